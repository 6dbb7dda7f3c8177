"""External trials: clients that run a study's trials themselves ask for one, report its steps,
beat and tell how it ended (``objective: {external: true}``). Members only; another team's
study is 404, a study whose trials our workers run is 409.

``POST .../ask`` answers one trial, or with ``?count=K`` a list ``{"items": [...]}`` of 1 to K.
With nothing to give it answers **409** with ``details.reason``; while trials of the study are
still running (one of them may be lost and come back as a retry, or free a ``max_parallel``
slot) the 409 carries ``Retry-After`` (and ``details.retry_after_s``): ask again then. A 409
without ``Retry-After`` is final: the study gives no more trials.

Ask, report and tell run Optuna's sampler, pruner and ``tell`` over ``SqlStorage``, which
reads and writes in transactions of its own, so these routes take their own short transactions
around it instead of the request's session: on SQLite an open write transaction holds the
database's one write lock, and anywhere a request holding one pooled connection while it waits
for another would, with enough such requests at once, leave the pool none to give. See
``tuneboard.studies.external``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response, status
from pydantic import WithJsonSchema
from sqlalchemy.orm import Session

from api.deps import (
    API_PREFIX,
    Member,
    SessionDep,
    SettingsDep,
    StorageDep,
    StudyId,
    TrialNumber,
    unit_of_work,
)
from api.errors import error_response
from api.openapi import ERRORS, ErrorBody
from api.ratelimit import check_running_trials_cap
from tuneboard.studies import external
from tuneboard.studies.external_schemas import (
    MAX_ASK_COUNT,
    REPORT_BODY_SCHEMA,
    AskedTrial,
    AskedTrials,
    LeaseAnswer,
    ReportAnswer,
    TellRequest,
    parse_report,
)
from tuneboard.studies.schemas import TrialDetail

router = APIRouter(
    prefix=API_PREFIX + "/studies/{study_id}/trials", tags=["external trials"], responses=ERRORS
)

Transaction = Callable[[], AbstractContextManager[Session]]


async def get_transaction(request: Request) -> Transaction:
    return functools.partial(unit_of_work, request.app.state.session_factory)


Transactions = Annotated[Transaction, Depends(get_transaction)]


REPORT_EXAMPLES: dict[str, Any] = {
    "one step": {"value": {"step": 3, "metrics": {"val_loss": 0.41, "val_accuracy": 0.88}}},
    "several steps": {"value": [{"step": 4, "metrics": {"val_accuracy": 0.9}},
                                {"step": 5, "metrics": {"val_accuracy": 0.91}}]},
}

_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorBody,
        "description": "No trial to give (`details.reason`); with `Retry-After` while trials "
        "still run, final without it",
    }
}


@router.post(
    "/ask",
    status_code=status.HTTP_201_CREATED,
    response_model=AskedTrial | AskedTrials,
    summary="Ask for a trial to run (external studies)",
    description="Parameters come from the study's sampler; waiting trials (retries of lost "
    "ones, trials enqueued with fixed parameters) come first. The trial is leased until "
    "`lease_expires_at`: report or beat before then. `?count=K`: up to K trials at once, as "
    "`{items: [...]}`.",
    responses=_CONFLICT,
)
def ask(
    principal: Member,
    settings: SettingsDep,
    transaction: Transactions,
    storage: StorageDep,
    study_id: StudyId,
    count: Annotated[int | None, Query(ge=1, le=MAX_ASK_COUNT)] = None,
) -> Any:
    with transaction() as session:
        check_running_trials_cap(session, settings, principal.team_id)
        claimed = external.claim(session, storage, principal, study_id, count=count or 1,
                                 lease_s=settings.lease_s)
    if isinstance(claimed, external.NoTrial):
        return _no_trial(claimed)
    asked = external.suggest(storage, claimed)
    return AskedTrials(items=asked) if count is not None else asked[0]


def _no_trial(outcome: external.NoTrial) -> Response:
    details: dict[str, Any] = {"reason": outcome.reason, "study_state": outcome.study_state,
                               **outcome.details}
    headers = None
    if outcome.retry_after_s is not None:
        details["retry_after_s"] = outcome.retry_after_s
        headers = {"Retry-After": str(outcome.retry_after_s)}
    return error_response(409, "conflict", outcome.message, details, headers)


@router.post(
    "/{number}/report",
    summary="Report a running trial's metrics at a step (or several steps)",
    description="`{step, metrics: {name: value}}` or a list of them, steps increasing. A step "
    "stored already is skipped, so a retried request is harmless; a new step below the last "
    "stored one is a 422. Extends the lease. `should_prune`: the study's pruner says stop "
    "(tell `pruned`); `should_stop`: the study was cancelled, finished or ran out of time.",
    responses={409: {"model": ErrorBody, "description": "The trial is finished"}},
)
def report(
    principal: Member,
    settings: SettingsDep,
    transaction: Transactions,
    storage: StorageDep,
    study_id: StudyId,
    number: TrialNumber,
    body: Annotated[dict[str, Any] | list[Any], WithJsonSchema(REPORT_BODY_SCHEMA),
                    Body(openapi_examples=REPORT_EXAMPLES)],
) -> ReportAnswer:
    steps = parse_report(body)
    with transaction() as session:
        reported = external.report(session, storage, principal, study_id, number, steps,
                                   lease_s=settings.lease_s)
    return external.should_prune(storage, reported)


@router.post(
    "/{number}/heartbeat",
    summary="Extend a running trial's lease",
    responses={409: {"model": ErrorBody, "description": "The trial is finished"}},
)
def heartbeat(
    session: SessionDep,
    principal: Member,
    settings: SettingsDep,
    study_id: StudyId,
    number: TrialNumber,
) -> LeaseAnswer:
    until, should_stop = external.heartbeat(session, principal, study_id, number,
                                            lease_s=settings.lease_s)
    return LeaseAnswer(lease_expires_at=until, should_stop=should_stop)


@router.post(
    "/{number}/tell",
    summary="Tell how a trial ended: complete, pruned or fail",
    description="`complete` needs the study metric(s): `values` (one per objective) or "
    "`metrics` that include them; `fail` may carry `error`. The trial is judged against the "
    "study's standard and the study is dispatched (or settled). A finished trial is a 409.",
    responses={409: {"model": ErrorBody, "description": "The trial is finished already"}},
)
def tell(
    principal: Member,
    transaction: Transactions,
    storage: StorageDep,
    study_id: StudyId,
    number: TrialNumber,
    body: TellRequest,
) -> TrialDetail:
    with transaction() as session:
        telling = external.check_tell(session, principal, study_id, number, body)
    external.record_tell(storage, telling)
    with transaction() as session:
        return TrialDetail.of(external.settle_tell(session, telling))
