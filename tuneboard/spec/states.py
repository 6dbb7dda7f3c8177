"""Study and trial states and trial origins: the words the API, the store and the workers share.

Values are the lower-case names the HTTP API shows and the database stores. Trial states are
Optuna's own names, so ``TrialState(optuna_state.name.lower())`` maps one to the other.
"""

from __future__ import annotations

from enum import StrEnum


class StudyState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    # Cancelled while trials still run; ``cancelled`` once the last of them has ended.
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"

    def is_finished(self) -> bool:
        """Nothing of the study runs or will run (until it is extended)."""
        return self in _FINISHED_STUDY

    def is_active(self) -> bool:
        """Trials may still be dispatched or be running."""
        return not self.is_finished()

    def takes_trials(self) -> bool:
        """New trials may be created: active, and not being cancelled."""
        return self.is_active() and self is not StudyState.CANCELLING

    def is_cancelled(self) -> bool:
        """Cancelled, whether or not its last trials have ended yet."""
        return self in (StudyState.CANCELLING, StudyState.CANCELLED)

    @classmethod
    def finished(cls) -> tuple[StudyState, ...]:
        return tuple(s for s in cls if s.is_finished())

    @classmethod
    def active(cls) -> tuple[StudyState, ...]:
        return tuple(s for s in cls if s.is_active())


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


class TrialOrigin(StrEnum):
    """Why a trial exists."""

    SAMPLER = "sampler"  # drawn by the sampler within ``budget.n_trials``
    MANUAL = "manual"  # enqueued by a person with fixed parameters, outside the budget
    RETRY = "retry"  # the next attempt of a trial whose worker was lost
    STABILITY = "stability"  # a re-run with another seed, for a stability criterion
    WARM_START = "warm_start"  # a first trial from the standard's or earlier studies' best
    OPTUNA = "optuna"  # created through Optuna's storage API (``SqlStorage``)


_FINISHED_STUDY = frozenset({StudyState.COMPLETED, StudyState.CANCELLED, StudyState.FAILED})
_FINISHED_TRIAL = frozenset({TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL})
