"""A study's trials as a file: CSV or Parquet, with parameters and final metrics.

Registered before the trials router: ``/trials/export`` is this route, not trial "export".
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from api.deps import API_PREFIX, SessionDep, StudyDep
from api.openapi import ERRORS
from tuneboard.studies import export
from tuneboard.studies.export import ExportFormat

router = APIRouter(prefix=f"{API_PREFIX}/studies", tags=["trials"], responses=ERRORS)


@router.get(
    "/{study_id}/trials/export",
    summary="Export a study's trials (CSV or Parquet)",
    description="One row per trial, by number: `number`, `state`, one column per objective "
    "named by its metric, `param_<name>` per parameter, `metric_<name>` (the last value of each "
    "per-epoch metric), `epochs_run`, `attempt`, `retry_of`, `accepted`, `device`, "
    "`datetime_start`, `datetime_complete` (UTC). Empty cells (Parquet: null) where a trial has "
    "no value.",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}},
                     "description": "The file, as an attachment."}},
)
def export_trials(
    session: SessionDep,
    study: StudyDep,
    fmt: Annotated[
        ExportFormat, Query(alias="format", description="csv or parquet")
    ] = ExportFormat.CSV,
) -> Response:
    table = export.trial_table(session, study)
    headers = {
        "Content-Disposition": f'attachment; filename="{export.filename(study, fmt)}"'
    }
    if fmt is ExportFormat.CSV:
        return StreamingResponse(
            export.csv_chunks(table), media_type=fmt.media_type, headers=headers
        )
    return Response(export.parquet_bytes(table), media_type=fmt.media_type, headers=headers)
