"""Why a running trial stops before its objective returns, as a worker learns it from the store.

The store is the only place a cancel, a finished study or the reaper's verdict on a trial shows
up, so a running trial polls it (at most every ``STOP_POLL_INTERVAL_S``, never per step). The
answers, in order of precedence:

- the trial row is gone, or the study was cancelled: abort, and the trial fails with that reason
  even if its objective returns a value afterwards;
- the trial is no longer RUNNING (the reaper failed it, or a retry replaced it): abort; the
  store already holds its outcome, which the runner's own outcome cannot overwrite;
- the study finished some other way: abort;
- the study's ``budget.timeout_s`` ran out: stop after the current step and keep its result,
  because the trial has done work the study can use.

Once a reason is found it is kept: a trial never resumes.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from datetime import datetime

from tuneboard.db import session_scope, utcnow
from tuneboard.spec import StudyState, TrialState
from tuneboard.studies import repository as repo
from workers.outage import is_outage

__all__ = [
    "STOP_POLL_INTERVAL_S",
    "STUDY_CANCELLED",
    "Stop",
    "StopCheck",
    "StopReason",
    "TrialAborted",
    "stop_for",
]

STOP_POLL_INTERVAL_S = 1.0


class TrialAborted(Exception):
    """The trial must stop at once: its study was cancelled, or the reaper already gave it up."""


class StopReason(enum.Enum):
    TRIAL_DELETED = enum.auto()
    STUDY_CANCELLED = enum.auto()
    TRIAL_GIVEN_UP = enum.auto()
    STUDY_FINISHED = enum.auto()
    TIMED_OUT = enum.auto()

    @property
    def aborts(self) -> bool:
        """Stop without finishing the step: its result would be thrown away anyway."""
        return self is not StopReason.TIMED_OUT


@dataclass(frozen=True)
class Stop:
    """A reason to stop, and the text an aborted trial's ``error`` shows for it."""

    reason: StopReason
    message: str

    @property
    def aborts(self) -> bool:
        return self.reason.aborts


STUDY_CANCELLED = Stop(StopReason.STUDY_CANCELLED, "study cancelled")


def stop_for(
    progress: tuple[TrialState, StudyState, datetime | None] | None,
    timeout_s: float | None,
    now: datetime,
) -> Stop | None:
    """Whether a trial with ``progress`` = (trial state, study state, study started at) stops."""
    if progress is None:
        return Stop(StopReason.TRIAL_DELETED, "trial deleted")
    trial_state, study_state, started_at = progress
    if study_state.is_cancelled():
        return STUDY_CANCELLED
    if trial_state is not TrialState.RUNNING:
        return Stop(StopReason.TRIAL_GIVEN_UP, f"trial is {trial_state}: the reaper gave it up")
    if study_state.is_finished():
        return Stop(StopReason.STUDY_FINISHED, f"study {study_state}")
    if timeout_s and started_at is not None and (now - started_at).total_seconds() >= timeout_s:
        return Stop(StopReason.TIMED_OUT, "budget.timeout_s reached")
    return None


class StopCheck:
    """``ctx.should_stop`` for one trial: true once :func:`stop_for` gives a reason."""

    def __init__(self, url: str, trial_id: int, timeout_s: float | None) -> None:
        self.url = url
        self.trial_id = trial_id
        self.timeout_s = timeout_s
        self.stop: Stop | None = None
        # The claim has just seen the study active: the first poll can wait its turn.
        self._polled_at = time.monotonic()

    def __call__(self) -> bool:
        if self.stop is not None:
            return True
        now = time.monotonic()
        if now - self._polled_at < STOP_POLL_INTERVAL_S:
            return False
        self._polled_at = now
        try:
            with session_scope(self.url) as session:
                progress = repo.trial_progress(session, self.trial_id)
        except Exception as exc:
            if not is_outage(exc):
                raise
            return False  # no news while the database is away (the report writer waits for it)
        self.observe(progress)
        return self.stop is not None

    def wants_news(self) -> bool:
        """Whether another transaction should read what a poll reads, for :meth:`observe`: no
        reason found yet, and half the poll interval passed, so that the poll itself need not
        run while such transactions come at least that often."""
        return (self.stop is None
                and time.monotonic() - self._polled_at >= STOP_POLL_INTERVAL_S / 2)

    def observe(
        self, progress: tuple[TrialState, StudyState, datetime | None] | None
    ) -> None:
        """What a poll would have read, read by another transaction (the report writer's): the
        next poll waits its turn. A reason found before is kept."""
        self._polled_at = time.monotonic()
        if self.stop is None:
            self.stop = stop_for(progress, self.timeout_s, utcnow())

    @property
    def cancelled(self) -> bool:
        return self.stop is not None and self.stop.reason is StopReason.STUDY_CANCELLED

    def raise_if_aborted(self) -> None:
        """Poll, and raise :class:`TrialAborted` if the trial must stop at once."""
        if self() and self.stop is not None and self.stop.aborts:
            raise TrialAborted(self.stop.message)
