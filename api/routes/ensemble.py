"""Ensembles of a study's best trials: members ask for one, viewers read the latest."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import API_PREFIX, Member, SessionDep, StudyDep
from api.openapi import ERRORS
from tuneboard.studies import ensemble
from tuneboard.studies.ensemble_schemas import EnsembleCreate, EnsembleOut

router = APIRouter(
    prefix=f"{API_PREFIX}/studies/{{study_id}}", tags=["ensembles"], responses=ERRORS
)


@router.post(
    "/ensemble",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Ensemble a study's best trials",
    description="Averages the probabilities (classification) or predictions (regression) of "
    "the best checkpoints of the study's `k` best complete trials and scores them with the "
    "study metric on its validation split, beside the best member alone. A worker evaluates "
    "it: the answer is the pending record; read the result with GET. 409 when the study's "
    "trials cannot be ensembled (not the built-in trainer, k-fold validation, no `best` "
    "checkpoints) or it has fewer than `k` complete trials with checkpoints.",
)
def create_ensemble(
    session: SessionDep, principal: Member, study: StudyDep, body: EnsembleCreate
) -> EnsembleOut:
    return EnsembleOut.of(ensemble.request_ensemble(session, principal, study, body.k))


@router.get("/ensemble", summary="A study's latest ensemble and its result")
def get_ensemble(session: SessionDep, study: StudyDep) -> EnsembleOut:
    return EnsembleOut.of(ensemble.latest_ensemble(session, study))
