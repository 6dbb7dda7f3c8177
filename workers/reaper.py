"""The reaper: makes the database's view of trials true again after crashes and lost messages.

Every ``TUNEBOARD_REAPER_INTERVAL_S`` it

1. fails RUNNING trials whose heartbeat is older than ``TUNEBOARD_GRACE_PERIOD_S`` ("worker lost")
   and, within ``budget.max_retries``, creates a retry with the same parameters, seed and
   checkpoint directory, so that the retry resumes from the lost attempt's latest checkpoint;
2. re-sends WAITING trials whose message has been out for a while while their queue is empty:
   the broker lost it (Redis restarted without persistence, a worker killed holding it);
3. dispatches studies with no active trial: trials they are owed, or their completion.
4. sends the webhook deliveries that are due (``tuneboard.webhooks.deliver_due``).

A study created through Optuna's own API has no spec and so no budget: its lost trials are failed
and never retried, since no worker of ours can run them.

A heartbeat missed while the database was unreachable is no sign of a lost worker: after a pass
that could not reach the database, ``run_forever`` fails no trial as lost until a grace period
has passed since it could again, which lets the workers beat (or record why their trial failed)
first. A trial that failed with a recorded error keeps that error.

Several reapers may run at once (one per ``tuneboard worker``): every change is a conditional
update under the study's row lock, so racing reapers change each thing once. Attempts are
counted in the database, which is what ends the loop of a trial that kills its worker
(``task_reject_on_worker_lost`` requeues such a message with no count of its own).

Runs as ``python -m workers.reaper`` (``tuneboard worker`` starts it), or one pass at a time as
the ``tuneboard.reap`` task under Celery beat.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from types import FrameType

from celery import Celery
from sqlalchemy.orm import Session

from tuneboard import webhooks
from tuneboard.config import Settings, get_settings
from tuneboard.db import session_scope, set_application_name, utcnow
from tuneboard.db.engine import describe_db_error
from tuneboard.db.models import Study, Trial
from tuneboard.optimization.params import external_params
from tuneboard.queue import celery_client, enqueue_after_commit
from tuneboard.spec.states import TrialOrigin
from tuneboard.studies import dispatch, external, verdicts
from tuneboard.studies import external_repository as external_repo
from tuneboard.studies import repository as repo
from workers.broker import ready_messages
from workers.outage import is_outage, log_failure

__all__ = ["ReapReport", "reap_once", "redispatch_after_s", "run_forever"]

log = logging.getLogger(__name__)


@dataclass
class ReapReport:
    """What one pass did: trials failed as lost, retries created for them, waiting trials whose
    message was sent again, and studies it found done and finished."""

    failed: int = 0
    retried: int = 0
    resent: int = 0
    settled: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def redispatch_after_s(settings: Settings) -> float:
    """How long a waiting trial's message may be out before the reaper suspects it lost."""
    interval = settings.reaper_interval_s
    return 2 * interval + min(interval, 5.0)


def reap_once(
    settings: Settings | None = None,
    *,
    now: datetime | None = None,
    app: Celery | None = None,
    fail_lost: bool = True,
) -> ReapReport:
    """One pass; ``fail_lost`` false leaves running trials alone (see ``run_forever``)."""
    settings = settings or get_settings()
    now = now or utcnow()
    report = ReapReport()
    if fail_lost:
        fail_lost_trials(settings, now, report)
        fail_lost_clients(settings, now, report)
    resend_undelivered(settings, now, report, app or celery_client())
    dispatch_idle_studies(settings, report)
    webhooks.deliver_due(settings.database_url)  # at the current time: this pass's events too
    if report.failed or report.resent or report.settled:
        log.info("reaper: %s", report.as_dict())
    return report


def fail_lost_trials(settings: Settings, now: datetime, report: ReapReport) -> None:
    url = settings.database_url
    stale_before = now - timedelta(seconds=settings.grace_period_s)
    with session_scope(url) as session:
        stale = [(t.id, t.study_id) for t in repo.stale_running_trials(session, stale_before)]
    for trial_id, study_id in stale:
        with session_scope(url) as session:
            study = repo.lock_study(session, study_id)
            trial = repo.get_trial_by_id(session, trial_id)
            if study is None or trial is None or trial.heartbeat_at is None:
                continue
            silent_s = (now - trial.heartbeat_at).total_seconds()
            reason = (f"worker lost: no heartbeat for {silent_s:.0f}s "
                      f"(worker {trial.worker or 'unknown'})")
            if not repo.fail_stale_trial(session, trial_id, stale_before=stale_before,
                                         reason=reason, now=now):
                continue
            session.refresh(trial)
            _after_lost(session, study, trial, now, report)


def fail_lost_clients(settings: Settings, now: datetime, report: ReapReport) -> None:
    """Fail external trials whose lease has passed ("client lost") and retry them as
    ``fail_lost_trials`` does; the retry waits for the next ask."""
    url = settings.database_url
    with session_scope(url) as session:
        expired = external_repo.expired_leases(session, now)
    for trial_id, study_id in expired:
        with session_scope(url) as session:
            study = repo.lock_study(session, study_id)
            trial = external.fail_lost(session, trial_id, now) if study is not None else None
            if study is not None and trial is not None:
                _after_lost(session, study, trial, now, report)


def _after_lost(
    session: Session, study: Study, trial: Trial, now: datetime, report: ReapReport
) -> None:
    """A trial just failed as lost: its retry within ``budget.max_retries`` (else its verdict),
    and what the study is owed next."""
    report.failed += 1
    log.warning("trial %s/%d failed: %s", study.id, trial.number, trial.error)
    spec = study.spec_model
    if (spec is not None and study.state.takes_trials()
            and trial.attempt <= spec.budget.max_retries):
        _retry(session, study, trial, now)
        report.retried += 1
    elif study.standard_version_id is not None:
        verdicts.judge(session, trial, {})
    dispatch.dispatch(session, study.id, now)


def _retry(session: Session, study: Study, lost: Trial, now: datetime) -> Trial:
    """The next attempt of ``lost``: same parameters, seed and checkpoint directory."""
    attrs: dict[str, object] = {
        "fixed_params": external_params(lost.params or {}, lost.distributions or {})
    }
    stability_of = (lost.system_attrs or {}).get(verdicts.STABILITY_OF_ATTR)
    if stability_of is not None:
        attrs[verdicts.STABILITY_OF_ATTR] = stability_of
    (retry,) = dispatch.add_trials(
        session, study, TrialOrigin.RETRY,
        [{"seed": lost.seed, "attempt": lost.attempt + 1, "retry_of": lost.number,
          "checkpoint_path": lost.checkpoint_path, "system_attrs": attrs}],
        now=now,
    )
    log.info("trial %s/%d retries %d (attempt %d)", study.id, retry.number, lost.number,
             retry.attempt)
    return retry


def resend_undelivered(
    settings: Settings, now: datetime, report: ReapReport, app: Celery
) -> None:
    """Re-send waiting trials whose message is overdue, on queues with nothing ready in the
    broker: a message still queued behind busy workers is not lost, only late."""
    cutoff = now - timedelta(seconds=redispatch_after_s(settings))
    with session_scope(settings.database_url) as session:
        overdue = repo.undelivered_waiting_trials(session, cutoff)
    by_queue: dict[str, list[int]] = defaultdict(list)
    study_of: dict[int, int] = {}
    for trial_id, study in overdue:
        by_queue[dispatch.queue_of(study)].append(trial_id)
        study_of[trial_id] = study.id
    # The broker is asked outside any transaction: never wait on it holding a database lock.
    owed = [
        (trial_id, queue)
        for queue, ids in by_queue.items()
        if queue_is_empty(app, queue)
        for trial_id in ids
    ]
    if not owed:
        return
    with session_scope(settings.database_url) as session:
        # Study rows before trial rows, in id order: the lock order of every writer.
        for study_id in sorted({study_of[trial_id] for trial_id, _ in owed}):
            repo.lock_study(session, study_id)
        repo.mark_dispatched(session, [trial_id for trial_id, _ in owed], now)
        enqueue_after_commit(session, owed)
    report.resent += len(owed)


def queue_is_empty(app: Celery, queue: str) -> bool:
    """No message ready on ``queue``. When the broker cannot tell, say empty: a needless
    re-send costs a duplicate delivery, which the claim makes harmless."""
    return not ready_messages(app, queue)


def dispatch_idle_studies(settings: Settings, report: ReapReport) -> None:
    """Dispatch each active study with no active trial: nothing else will (whoever ended its
    last trial may have died before dispatching), and it is owed trials or its completion."""
    with session_scope(settings.database_url) as session:
        study_ids = repo.studies_to_settle(session)
    for study_id in study_ids:
        with session_scope(settings.database_url) as session:
            dispatch.dispatch(session, study_id)
            state = repo.study_state(session, study_id)
        report.settled += int(state is None or state.is_finished())


def run_forever(settings: Settings, stop: threading.Event) -> None:
    """Reap every ``reaper_interval_s`` until ``stop`` is set; errors are logged, not fatal."""
    log.info("reaper: every %.1fs, grace period %.1fs", settings.reaper_interval_s,
             settings.grace_period_s)
    unreachable = False
    lost_after = 0.0  # monotonic time from which silent trials count as lost
    while not stop.is_set():
        if unreachable:
            lost_after = time.monotonic() + settings.grace_period_s
        try:
            reap_once(settings, fail_lost=time.monotonic() >= lost_after)
            unreachable = False
        except Exception as exc:
            unreachable = is_outage(exc)
            if unreachable:
                log.warning("reaper pass: database unreachable (%s); trying again in %.1fs",
                            describe_db_error(exc), settings.reaper_interval_s)
            else:
                log_failure(log, exc, "reaper pass failed; trying again in %.1fs",
                            settings.reaper_interval_s)
        stop.wait(settings.reaper_interval_s)


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workers.reaper",
                                     description="Run the reaper until SIGINT or SIGTERM.")
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    set_application_name("tuneboard-reaper")
    if args.once:
        print(reap_once(settings).as_dict())
        return
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    run_forever(settings, stop)


if __name__ == "__main__":
    _main()
