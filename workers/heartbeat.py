"""A running trial's heartbeat: the only sign of life the reaper trusts.

The reaper fails a RUNNING trial whose ``heartbeat_at`` is older than
``TUNEBOARD_GRACE_PERIOD_S``, so a trial must beat for as long as it runs, whatever its objective
does (a long epoch, a blocking call into native code). The beat therefore comes from a thread of
its own, in a transaction of its own that touches only ``heartbeat_at`` of a RUNNING trial: it
never waits on, nor holds up, the trial's other writes, and it cannot revive a trial the reaper
already failed. Every report the trial stores sets ``heartbeat_at`` too (see
``repository.record_reports``), so the thread writes only when no report was stored for
``TUNEBOARD_HEARTBEAT_INTERVAL_S``: a trial reporting more often than that costs the database no
heartbeat transactions. Optuna has a heartbeat of its own, but it only runs inside
``Study.optimize``, which workers do not call.

A beat may be lost without harm (it commits without waiting for the disk), and a failed beat is
logged and tried again at the next one: the grace period, longer than the interval (six
intervals by default), is what covers a missed beat. While the database is unreachable the beat
keeps trying, logged once per outage; the reaper, which cannot reach the database either, gives
trials a grace period from the moment it can again before it calls any of them lost.
"""

from __future__ import annotations

import logging
import threading
import time

from tuneboard.db import session_scope, utcnow
from tuneboard.db.engine import describe_db_error
from tuneboard.studies import repository as repo
from workers.outage import is_outage, log_failure

__all__ = ["Heartbeat"]

log = logging.getLogger(__name__)


class Heartbeat:
    """Beats between :meth:`start` and :meth:`stop` whenever ``interval_s`` passed since the
    last beat, whether its own or one a report carried (:meth:`carried`)."""

    def __init__(self, url: str, trial_id: int, interval_s: float) -> None:
        self.url = url
        self.trial_id = trial_id
        self.interval_s = interval_s
        # The claim set heartbeat_at; time.monotonic() of the last beat since.
        self._beat_at = time.monotonic()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial_id}",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=self.interval_s + 5)

    def carried(self) -> None:
        """A write that set ``heartbeat_at`` was committed (a report): the next beat can wait."""
        self._beat_at = time.monotonic()

    def _due_in_s(self) -> float:
        return max(0.0, self._beat_at + self.interval_s - time.monotonic())

    def _run(self) -> None:
        down = False
        while not self._stopped.wait(self._due_in_s()):
            if self._due_in_s() > 0:
                continue  # a report beat meanwhile
            # A failed beat is tried again an interval later, as a lost one would be.
            self._beat_at = time.monotonic()
            try:
                with session_scope(self.url) as session:
                    repo.commit_without_flush(session)
                    repo.touch_heartbeat(session, self.trial_id, utcnow())
            except Exception as exc:
                if not is_outage(exc):
                    log_failure(log, exc, "heartbeat of trial id %s failed", self.trial_id)
                elif not down:
                    log.warning("heartbeat of trial id %s: database unreachable (%s)",
                                self.trial_id, describe_db_error(exc))
                down = down or is_outage(exc)
                continue
            if down:
                log.warning("heartbeat of trial id %s: database back", self.trial_id)
                down = False
