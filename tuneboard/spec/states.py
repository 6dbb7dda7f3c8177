"""Study and trial states: the words the API, the store and the workers share.

Values are the lower-case names the HTTP API shows and the database stores. Trial states are
Optuna's own names, so ``TrialState(optuna_state.name.lower())`` maps one to the other.
"""

from __future__ import annotations

from enum import StrEnum


class StudyState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"

    def is_finished(self) -> bool:
        """Nothing of the study runs or will run (until it is extended)."""
        return self in _FINISHED_STUDY

    def is_active(self) -> bool:
        """Trials may still be dispatched or be running."""
        return not self.is_finished()

    @classmethod
    def finished(cls) -> tuple[StudyState, ...]:
        return tuple(s for s in cls if s.is_finished())


class TrialState(StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAIL = "fail"

    def is_finished(self) -> bool:
        return self in _FINISHED_TRIAL

    def is_active(self) -> bool:
        """Waiting or running: counts against ``max_parallel``."""
        return not self.is_finished()

    def has_value(self) -> bool:
        """Complete trials carry the objective value that ranks them."""
        return self is TrialState.COMPLETE

    @classmethod
    def finished(cls) -> tuple[TrialState, ...]:
        return tuple(s for s in cls if s.is_finished())

    @classmethod
    def active(cls) -> tuple[TrialState, ...]:
        return tuple(s for s in cls if s.is_active())


_FINISHED_STUDY = frozenset({StudyState.COMPLETED, StudyState.CANCELLED, StudyState.FAILED})
_FINISHED_TRIAL = frozenset({TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL})
