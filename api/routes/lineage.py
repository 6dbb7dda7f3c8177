"""Studies that go on: extend a finished study, or clone one into a new study linked to it."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import API_PREFIX, Member, SessionDep, StudyId
from api.openapi import ERRORS
from api.routes.studies import study_detail
from tuneboard.studies import lineage
from tuneboard.studies.lineage import CloneRequest, ExtendRequest
from tuneboard.studies.schemas import StudyDetail

router = APIRouter(prefix=f"{API_PREFIX}/studies", tags=["studies"], responses=ERRORS)


@router.post(
    "/{study_id}/extend",
    summary="Continue a finished study with more trials",
    description="A completed (budget spent or stopped by its `stopping` rule) or cancelled "
    "study runs `n_trials` more sampler trials, with everything it ran before as the sampler's "
    "history; with a timeout it may run `timeout_s` more seconds from now (left out: its "
    "`budget.timeout_s` again). Its stopping rule judges only the new trials. **409** when "
    "the study is still active, or failed.",
)
def extend_study(
    session: SessionDep, principal: Member, study_id: StudyId, body: ExtendRequest
) -> StudyDetail:
    return study_detail(session, lineage.extend_study(session, principal, study_id, body))


@router.post(
    "/{study_id}/clone",
    status_code=status.HTTP_201_CREATED,
    summary="A new study from this one's spec, with changes",
    description="`changes` is a JSON merge patch over the study's stored spec (objects merge "
    "key by key, `null` removes a key, anything else replaces). The result is admitted and "
    "validated like any new spec (**422** naming the field), starts with no trials, and "
    "shows the study it came from as `parent_id`.",
)
def clone_study(
    session: SessionDep, principal: Member, study_id: StudyId, body: CloneRequest
) -> StudyDetail:
    return study_detail(session, lineage.clone_study(session, principal, study_id, body))
