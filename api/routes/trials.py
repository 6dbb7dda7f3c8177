"""A study's trials: enqueue one with fixed parameters, list, read one, its per-epoch metrics."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import (
    API_PREFIX,
    TRIAL_CAPS,
    Member,
    SessionDep,
    StudyDep,
    StudyId,
    TrialNumber,
)
from api.openapi import ERRORS
from api.pagination import CursorKey, Limit, page
from tuneboard.schemas import Page
from tuneboard.spec.states import TrialState
from tuneboard.studies import service as studies
from tuneboard.studies.schemas import (
    EnqueueTrialRequest,
    MetricsAtStep,
    TrialDetail,
    TrialSummary,
)

router = APIRouter(
    prefix=API_PREFIX + "/studies/{study_id}/trials", tags=["trials"], responses=ERRORS
)

@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Enqueue a trial with fixed parameters",
    description="Like Optuna's `enqueue_trial`: the trial is created waiting and sent to a "
    "worker; it does not count against `budget.n_trials`. Parameters are checked against the "
    "search space (422 naming the parameter otherwise).",
    dependencies=[TRIAL_CAPS],
)
def enqueue_trial(
    session: SessionDep, principal: Member, study_id: StudyId, body: EnqueueTrialRequest
) -> TrialDetail:
    return TrialDetail.of(studies.enqueue_trial(session, principal, study_id, body.params))


@router.get("", summary="A study's trials, by number")
def list_trials(
    session: SessionDep,
    study: StudyDep,
    limit: Limit,
    after: CursorKey,
    state: TrialState | None = None,
) -> Page[TrialSummary]:
    rows = studies.list_trials(session, study, limit=limit + 1, after_number=after, state=state)
    items, next_cursor = page(rows, limit, lambda t: (t.number,))
    return Page[TrialSummary](items=[TrialSummary.of(t) for t in items], next_cursor=next_cursor)


@router.get("/{number}", summary="One trial, with the error of a failed one")
def get_trial(session: SessionDep, study: StudyDep, number: TrialNumber) -> TrialDetail:
    return TrialDetail.of(studies.get_trial(session, study, number))


@router.get(
    "/{number}/metrics",
    summary="A trial's per-epoch metrics",
    description="One item per step (epoch) with every metric reported at it; paginated by step.",
)
def trial_metrics(
    session: SessionDep,
    study: StudyDep,
    number: TrialNumber,
    limit: Limit,
    after: CursorKey,
) -> Page[MetricsAtStep]:
    rows = studies.trial_metrics(session, study, number, limit=limit + 1, after_step=after)
    steps, next_cursor = page(MetricsAtStep.group(rows), limit, lambda s: (s.step,))
    return Page[MetricsAtStep](items=steps, next_cursor=next_cursor)
