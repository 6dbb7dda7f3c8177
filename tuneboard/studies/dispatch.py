"""The dispatcher: decides, in the database, which trials a study is owed.

Budget (``n_trials``, ``max_parallel``, ``timeout_s``, ``max_failed``) is enforced here under a
lock on the study row, never in the broker: however many workers race, a study gets exactly
``n_trials`` sampler trials and never more than ``max_parallel`` active ones. A team's cap
(``TUNEBOARD_MAX_RUNNING_TRIALS_PER_TEAM``) bounds its active trials over all its studies the
same way, under a lock on the team row taken after the study's; a study held back by it is
dispatched again when a trial of its own ends, or by the reaper when it has none active.
New trials are WAITING rows (Optuna's state for enqueued trials); a worker claims one before
it runs.

Every path that creates trials of a study (this budget, a person's enqueue, a retry, a
stability re-run) goes through ``add_trials``, so every trial is numbered, seeded and sent the
same way. An external study's trials are never sent: a client asks for them over HTTP.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from tuneboard import webhooks
from tuneboard.config import get_settings
from tuneboard.db.base import utcnow
from tuneboard.db.models import Study, Trial
from tuneboard.db.queries import allocate_trial_numbers
from tuneboard.queue import enqueue_after_commit
from tuneboard.spec import BudgetSpec, ResourcesSpec, StudySpec
from tuneboard.spec.states import StudyState, TrialOrigin, TrialState
from tuneboard.studies import ensemble, stopping, warm_start
from tuneboard.studies import repository as repo
from tuneboard.webhooks import WebhookEvent

# Training seeds are kept below 2**31 - 1 (a prime), so they fit every framework's int32 seed.
SEED_MODULUS = 2**31 - 1
# Study seed s gives trial n the seed s * SEED_SPREAD + n: a prime far above any trial count,
# so studies with nearby seeds (1, 2, ...) do not share their trials' seeds.
SEED_SPREAD = 1_000_003


def trial_seed(spec: StudySpec | None, number: int) -> int:
    """Each trial's training seed: reproducible from the spec, different for every trial."""
    base = (spec.sampler.seed if spec is not None else None) or 0
    return (base * SEED_SPREAD + number) % SEED_MODULUS


def queue_of(study: Study) -> str:
    """The worker queue the study's trials are sent to."""
    spec = study.spec_model
    return (spec.resources if spec is not None else ResourcesSpec()).queue


def is_external(study: Study) -> bool:
    """Its trials run outside Tuneboard: clients ask for them over HTTP, no worker is sent any."""
    spec = study.spec_model
    return spec is not None and spec.objective.external


def timed_out(study: Study, now: datetime) -> bool:
    spec = study.spec_model
    timeout = spec.budget.timeout_s if spec is not None else None
    return bool(
        timeout and study.started_at and (now - study.started_at).total_seconds() >= timeout
    )


def _new_trial(
    study: Study, number: int, *, origin: TrialOrigin, now: datetime, **fields: Any
) -> Trial:
    """A trial row, WAITING unless ``fields`` say otherwise (``add_trials`` numbers, adds and
    sends it)."""
    fields.setdefault("seed", trial_seed(study.spec_model, number))
    fields.setdefault("state", TrialState.WAITING)
    return Trial(
        study_id=study.id,
        number=number,
        origin=origin,
        # No message is ever sent for an external trial, so the reaper never re-sends one.
        dispatched_at=None if is_external(study) else now,
        params={},
        distributions={},
        intermediate_values={},
        user_attrs={},
        **fields,
    )


def add_trials(
    session: Session,
    study: Study,
    origin: TrialOrigin,
    fields: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    send: bool = True,
    locked: bool = False,
) -> list[Trial]:
    """One trial per item of ``fields`` (column values beyond the defaults, such as ``seed``,
    ``system_attrs`` or, for a trial handed out at once, ``state``), numbered in order;
    flushed, and, with ``send``, sent to the study's queue once the caller commits. Numbering
    locks the study row until the commit.

    ``locked``: the caller read ``study`` with ``repo.lock_study`` in this transaction and has
    not changed its row since with a statement of its own, so its ``next_trial_number`` is the
    row's: the numbers are taken from it and written with the study's other changes in one
    flush, instead of by an update of their own."""
    if locked:
        first = study.next_trial_number
        study.next_trial_number = first + len(fields)
    else:
        first = allocate_trial_numbers(session, study.id, len(fields))
    trials = [
        _new_trial(study, first + i, origin=origin, now=now, **extra)
        for i, extra in enumerate(fields)
    ]
    session.add_all(trials)
    session.flush()
    if send and not is_external(study):
        enqueue_after_commit(session, owed(study, trials))
    return trials


def owed(study: Study, trials: Sequence[Trial]) -> list[tuple[int, str]]:
    """(trial id, queue) of each trial: what ``enqueue_after_commit`` sends."""
    queue = queue_of(study)
    return [(trial.id, queue) for trial in trials]


def plan(
    session: Session, study_id: int, now: datetime | None = None, *, locked: Study | None = None
) -> list[tuple[int, str]]:
    """Create the WAITING trials the budget allows now, or finish a study whose budget is spent.

    Returns (trial id, queue) pairs to send once the caller commits (see ``dispatch``).
    ``locked``: the study as the caller read it with ``repo.lock_study`` in this transaction,
    its row changed since only through it (see ``add_trials``); otherwise the row is locked and
    read here.
    """
    now = now or utcnow()
    study = locked if locked is not None else repo.lock_study(session, study_id)
    if study is not None and study.state is StudyState.CANCELLING:
        settle_cancel(session, study, now)
        return []
    spec = study.spec_model if study is not None else None
    if study is None or spec is None or not study.state.is_active():
        return []
    budget = spec.budget
    counts = repo.count_active_and_failed_trials(session, study.id)

    remaining = budget.n_trials - study.sampler_trials
    stop = stop_reason(session, study, spec, counts, now)
    free = budget.max_parallel - counts.active

    # An external study's trials are created when a client asks (``studies.external``).
    if stop is None and remaining > 0 and free > 0 and not spec.objective.external:
        n = min(remaining, free, _team_slots(session, study))
        if n <= 0:  # the team is at its cap: dispatched again once one of its trials ends
            return []
        first, study.sampler_trials = study.sampler_trials, study.sampler_trials + n
        trials = [  # the warm start's configurations are the budget's first trials
            trial
            for origin, each in warm_start.budget_trials(study, first, n)
            for trial in add_trials(session, study, origin, each, now=now, send=False,
                                    locked=True)
        ]
        return owed(study, trials)

    if counts.active == 0 and (stop is not None or remaining <= 0):
        _finish_study(study, stop, counts.failed, budget, now)
        ensemble.judge_finished_study(session, study, now)  # a standard's ensemble criterion
        webhooks.emit(session, team_id=study.team_id, event=WebhookEvent.STUDY_FINISHED,
                      payload=webhooks.payloads.study_finished(study))
    return []


def _team_slots(session: Session, study: Study) -> int:
    """How many more trials the study's team may have waiting or running, over all its studies:
    what ``TUNEBOARD_MAX_RUNNING_TRIALS_PER_TEAM`` leaves (no limit when it is 0)."""
    cap = get_settings().max_running_trials_per_team
    if not cap or study.team_id is None:
        return sys.maxsize
    return cap - repo.lock_team_active_trials(session, study.team_id)


def stop_reason(
    session: Session, study: Study, spec: StudySpec, counts: repo.ActiveAndFailed, now: datetime
) -> str | None:
    """Why the study (locked by the caller) takes no more sampler trials before its budget is
    spent: "timeout", "max_failed" or the reason of its ``stopping`` rule; None if none."""
    if timed_out(study, now):
        return "timeout"
    if counts.failed > spec.budget.max_failed:
        return "max_failed"
    if spec.budget.n_trials - study.sampler_trials > 0:
        return stopping.stop_reason(session, study, spec)  # the spec's ``stopping`` rule
    return None


def settle_cancel(session: Session, study: Study, now: datetime) -> None:
    """A cancelled study (locked by the caller) is ``cancelled`` once none of its trials is
    active, ``cancelling`` until then: whoever ends its last trial dispatches it, and the
    reaper dispatches every active study with no active trial."""
    if repo.count_active_and_failed_trials(session, study.id).active:
        study.state = StudyState.CANCELLING
    else:
        study.state, study.finished_at = StudyState.CANCELLED, now
        webhooks.emit(session, team_id=study.team_id, event=WebhookEvent.STUDY_FINISHED,
                      payload=webhooks.payloads.study_finished(study))


def _finish_study(
    study: Study, stop: str | None, failed: int, budget: BudgetSpec, now: datetime
) -> None:
    """The budget is spent, or ``stop`` ("timeout", "max_failed", a ``stopping`` rule's
    reason) ended it early."""
    if stop == "max_failed":
        study.state = StudyState.FAILED
        study.error = (
            f"{failed} trials failed, more than budget.max_failed={budget.max_failed}"
        )
    else:
        study.state = StudyState.COMPLETED
        if stop == "timeout":
            study.error = "stopped: budget.timeout_s reached"
        study.stop_reason = "budget.timeout_s reached" if stop == "timeout" else stop
    study.finished_at = now


def dispatch(session: Session, study_id: int, now: datetime | None = None) -> list[int]:
    """``plan`` and send the new trials' tasks after the caller's commit."""
    owed = plan(session, study_id, now)
    enqueue_after_commit(session, owed)
    return [trial_id for trial_id, _ in owed]
