"""Studies: create, list, read, cancel; a study's leaderboard and parameter importance."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query, Response, status
from sqlalchemy.orm import Session

from api.deps import (
    API_PREFIX,
    STUDY_CAPS,
    DetachedStudyDep,
    Member,
    SessionDep,
    SettingsDep,
    StudyDep,
    StudyId,
    Viewer,
)
from api.openapi import ERRORS, spec_request_body
from api.pagination import CursorKey, Limit, cursor_query, decode_cursor, page
from tuneboard import leaderboard
from tuneboard.db.models import Study
from tuneboard.schemas import Page
from tuneboard.spec.refs import REF_PATTERN
from tuneboard.spec.states import StudyState
from tuneboard.studies import ensemble
from tuneboard.studies import service as studies
from tuneboard.studies.schemas import (
    Importance,
    LeaderboardEntry,
    StudyAccepted,
    StudyDetail,
    StudyLeaderboard,
    StudySummary,
    spec_metrics,
)

router = APIRouter(prefix=f"{API_PREFIX}/studies", tags=["studies"], responses=ERRORS)


def study_detail(session: Session, study: Study) -> StudyDetail:
    """The study with its trial counts and best trial, as a route that makes or changes one
    answers it."""
    counts, best = studies.study_overview(session, study)
    return StudyDetail.of_study(study, counts, best)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=StudyDetail,
    summary="Create a study from a spec",
    description=(
        "The body is a study spec (schema `StudySpec`). A named standard's defaults fill what the "
        "spec leaves out. `Idempotency-Key`: the same key with the same body returns the study "
        "created the first time with **200** (a new study answers **201**); the same key with "
        "a different body is a **409**."
    ),
    responses={200: {"model": StudyDetail, "description": "Replayed: the key's existing study"}},
    openapi_extra=spec_request_body(),
    dependencies=[STUDY_CAPS],
)
def create_study(
    session: SessionDep,
    principal: Member,
    response: Response,
    spec: Annotated[dict[str, Any], Body()],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> StudyDetail:
    study, created = studies.create_study(
        session, principal, spec, idempotency_key=idempotency_key
    )
    if not created:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return study_detail(session, study)


@router.get("", summary="List the team's studies, newest first")
def list_studies(
    session: SessionDep,
    principal: Viewer,
    limit: Limit,
    before_id: CursorKey,
    state: StudyState | None = None,
    name: Annotated[str | None, Query(max_length=200)] = None,
    standard: Annotated[
        str | None,
        Query(max_length=250, pattern=REF_PATTERN, description='"name" (any version) or "name@N"'),
    ] = None,
) -> Page[StudySummary]:
    rows = studies.list_studies(
        session, principal, limit=limit + 1, before_id=before_id, state=state, name=name,
        standard=standard,
    )
    items, next_cursor = page(rows, limit, lambda row: (row[0].id,))
    return Page[StudySummary](
        items=[StudySummary.of(s, counts) for s, counts in items], next_cursor=next_cursor
    )


@router.get("/{study_id}", summary="A study: spec, state, trial counts, best trial")
def get_study(session: SessionDep, study: StudyDep) -> StudyDetail:
    counts, best = studies.study_overview(session, study)
    return StudyDetail.of_study(study, counts, best, ensemble.find_latest_ensemble(session, study))


@router.post(
    "/{study_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Cancel a study",
    description="No more trials are dispatched; waiting trials fail, running ones stop within "
    "one epoch. Cancelling a finished study changes nothing.",
)
def cancel_study(session: SessionDep, principal: Member, study_id: StudyId) -> StudyAccepted:
    return StudyAccepted.of(studies.cancel_study(session, principal, study_id))


@router.get(
    "/{study_id}/leaderboard",
    summary="A study's complete trials, best first",
    description="Ranked by the first objective in its direction (a multi-objective study too: "
    "`multi_objective` is true and `values` carries every objective). Trials without a finite "
    "value are not ranked.",
)
def study_leaderboard(
    session: SessionDep,
    study: StudyDep,
    limit: Limit,
    cursor: Annotated[str | None, cursor_query(int, float, int)] = None,
    accepted_only: bool = False,
) -> StudyLeaderboard:
    after = None
    if cursor:
        rank, value, number = decode_cursor(cursor, int, float, int)
        after = leaderboard.StudyPosition(rank, value, number)
    rows = leaderboard.study_leaderboard(
        session, study, limit=limit + 1, after=after, accepted_only=accepted_only
    )
    items, next_cursor = page(
        rows, limit, lambda r: (r.rank, r.trial.value, r.trial.number)
    )
    return StudyLeaderboard(
        items=[LeaderboardEntry.of(r.rank, r.trial) for r in items],
        next_cursor=next_cursor,
        study_id=study.id,
        metric=spec_metrics(study)[0] if spec_metrics(study) else "objective_0",
        direction="maximize" if study.maximizes else "minimize",
        multi_objective=len(study.directions or []) > 1,
    )


@router.get(
    "/{study_id}/importance",
    summary="Parameter importance",
    description="Optuna's importance evaluators over the study's complete trials (the latest "
    "1000): `ped_anova` (the default, milliseconds), `fanova` (seconds) or "
    "`mean_decrease_impurity`; `evaluator` in the answer says which ran. With fewer than two "
    "complete trials the answer is 200 with empty `importances` and a `reason`.",
)
def importance(
    study: DetachedStudyDep,
    settings: SettingsDep,
    evaluator: Literal["ped_anova", "fanova", "mean_decrease_impurity"] = "ped_anova",
    objective: Annotated[
        int, Query(ge=0, le=100, description="Which objective of a multi-objective study.")
    ] = 0,
) -> Importance:
    result = studies.parameter_importance(
        study, database_url=settings.database_url, evaluator=evaluator, objective=objective
    )
    return Importance(
        study_id=study.id,
        evaluator=result.evaluator,
        metric=result.metric,
        n_trials=result.n_trials,
        importances=result.importances,
        reason=result.reason,
    )
