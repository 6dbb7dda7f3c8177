"""The dispatcher: decides, in the database, which trials a study is owed.

Budget (``n_trials``, ``max_parallel``, ``timeout_s``, ``max_failed``) is enforced here under a
lock on the study row, never in the broker: however many workers race, a study gets exactly
``n_trials`` sampler trials and never more than ``max_parallel`` active ones. New trials are
WAITING rows (Optuna's state for enqueued trials); a worker claims one before it runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tuneboard.db.base import utcnow
from tuneboard.db.models import Study, Trial
from tuneboard.queue import enqueue_after_commit
from tuneboard.studies import repository as repo

ACTIVE_STUDY_STATES = ("queued", "running")


def trial_seed(spec: dict[str, Any], number: int) -> int:
    """Each trial's training seed: reproducible from the spec, different for every trial."""
    base = spec.get("sampler", {}).get("seed") or 0
    return (int(base) * 1_000_003 + number) % (2**31 - 1)


def queue_of(spec: dict[str, Any] | None) -> str:
    return str(((spec or {}).get("resources") or {}).get("queue") or "default")


def _budget(spec: dict[str, Any]) -> dict[str, Any]:
    return dict(spec.get("budget") or {})


def timed_out(study: Study, now: datetime) -> bool:
    timeout = _budget(study.spec or {}).get("timeout_s")
    return bool(
        timeout and study.started_at and (now - study.started_at).total_seconds() >= timeout
    )


def new_trial(study: Study, number: int, *, origin: str, now: datetime, **fields: Any) -> Trial:
    fields.setdefault("seed", trial_seed(study.spec or {}, number))
    return Trial(
        study_id=study.id,
        number=number,
        state="waiting",
        origin=origin,
        dispatched_at=now,
        params={},
        distributions={},
        intermediate_values={},
        user_attrs={},
        **fields,
    )


def plan(session: Session, study_id: int, now: datetime | None = None) -> list[tuple[int, str]]:
    """Create the WAITING trials the budget allows now, or settle a study that is done.

    Returns (trial id, queue) pairs to send once the caller commits (see ``dispatch``).
    """
    now = now or utcnow()
    study = repo.lock_study(session, study_id)
    if study is None or study.spec is None or study.state not in ACTIVE_STUDY_STATES:
        return []
    budget = _budget(study.spec)
    counts = repo.budget_counts(session, study.id)

    stop = None
    if timed_out(study, now):
        stop = "timeout"
    elif counts["failed"] > int(budget.get("max_failed", 10)):
        stop = "max_failed"
    remaining = int(budget.get("n_trials", 1)) - study.sampler_trials
    free = int(budget.get("max_parallel", 1)) - counts["active"]

    if stop is None and remaining > 0 and free > 0:
        n = min(remaining, free)
        first = repo.allocate_trial_numbers(session, study.id, n)
        study.sampler_trials += n
        trials = [
            new_trial(study, first + i, origin="sampler", now=now, system_attrs={})
            for i in range(n)
        ]
        session.add_all(trials)
        session.flush()
        queue = queue_of(study.spec)
        return [(t.id, queue) for t in trials]

    if counts["active"] == 0 and (stop is not None or remaining <= 0):
        _settle(study, stop, counts, now)
    return []


def _settle(study: Study, stop: str | None, counts: dict[str, int], now: datetime) -> None:
    if stop == "max_failed":
        study.state = "failed"
        study.error = (
            f"{counts['failed']} trials failed, more than budget.max_failed="
            f"{_budget(study.spec or {}).get('max_failed')}"
        )
    else:
        study.state = "completed"
        if stop == "timeout":
            study.error = "stopped: budget.timeout_s reached"
    study.finished_at = now


def dispatch(session: Session, study_id: int, now: datetime | None = None) -> list[int]:
    """``plan`` and send the new trials' tasks after the caller's commit."""
    owed = plan(session, study_id, now)
    enqueue_after_commit(session, owed)
    return [trial_id for trial_id, _ in owed]
