"""Every trial of a study in one compact answer: what the study page's charts and trials table
are drawn from. A row per trial, so that a study of 10,000 trials is one read and one small body
rather than twenty pages of full trials; ``from_number`` lets a live page re-read only the tail
that can still change (finished trials never change their Optuna fields).
"""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Response

from api.deps import API_PREFIX, MAX_ID, SessionDep, StudyDep
from api.openapi import ERRORS
from tuneboard.studies import service as studies
from tuneboard.studies.schemas import TrialTable

router = APIRouter(prefix=API_PREFIX, tags=["trials"], responses=ERRORS)


@router.get(
    "/studies/{study_id}/trial-table",
    summary="Every trial of a study, compactly",
    description="One row per trial (number, state, values, parameters, start and end, epochs, "
    "attempt, the trial it retries, worker, device, accepted, origin), unpaginated: the web UI "
    "draws its charts and trials table from it. With `from_number`, only the trials numbered "
    "from it on: a page that holds the others re-reads from its oldest unfinished trial.",
    response_model=TrialTable,
)
def trial_table(
    session: SessionDep,
    study: StudyDep,
    from_number: Annotated[
        int, Query(ge=0, le=MAX_ID, description="Only trials numbered from this on.")
    ] = 0,
) -> Response:
    # Serialised here rather than through the response model: 10,000 rows validated again on
    # the way out cost more than reading them.
    table = studies.trial_table_view(session, study, from_number)
    body = orjson.dumps(table, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)
    return Response(body, media_type="application/json")
