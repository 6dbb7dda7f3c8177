"""Every trial of a study in one compact answer: what the study page's charts and trials table
are drawn from. A row per trial, its fields in the order ``columns`` names, so that a study of
10,000 trials is one read and one small body rather than twenty pages of full trials.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from api.deps import API_PREFIX, SessionDep, StudyDep
from api.openapi import ERRORS
from tuneboard.db.models import Study, Trial
from tuneboard.schemas import finite_or_none
from tuneboard.studies import service as studies
from tuneboard.studies.schemas import spec_metrics, trial_params

router = APIRouter(prefix=API_PREFIX, tags=["trials"], responses=ERRORS)

TABLE_COLUMNS = (
    "number", "state", "values", "params", "datetime_start", "datetime_complete", "epochs_run",
    "attempt", "retry_of", "worker", "device", "accepted", "origin",
)


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class TrialTable(BaseModel):
    """Every trial of a study, by number. ``params`` of a row is aligned with ``param_names``
    (null where the trial has no such parameter); non-finite values are null."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "study_id": 12,
                    "metrics": ["val_accuracy"],
                    "directions": ["maximize"],
                    "param_names": ["lr", "optimizer"],
                    "columns": list(TABLE_COLUMNS),
                    "rows": [[0, "complete", [0.97], [0.003, "adam"], "2026-11-22T10:00:00Z",
                              "2026-11-22T10:01:12Z", 18, 1, None, "celery@host", "cpu", True,
                              "sampler"]],
                }
            ]
        }
    )

    study_id: int
    metrics: list[str] = Field(description="The objective metric(s), in objective order.")
    directions: list[str]
    param_names: list[str] = Field(description="Every parameter name, in order of appearance.")
    columns: list[str] = Field(description="What each row holds, in order.")
    rows: list[list[Any]]

    @classmethod
    def of(cls, study: Study, trials: list[Trial]) -> TrialTable:
        params = [trial_params(t) for t in trials]
        names: dict[str, None] = {}
        for p in params:
            names.update(dict.fromkeys(p))
        rows = [
            [
                t.number,
                t.state,
                [finite_or_none(v) for v in t.values] if t.values is not None else None,
                [p.get(name) for name in names],
                _utc(t.datetime_start),
                _utc(t.datetime_complete),
                t.epochs_run or 0,
                t.attempt or 1,
                t.retry_of,
                t.worker,
                t.device,
                t.accepted,
                t.origin,
            ]
            for t, p in zip(trials, params, strict=True)
        ]
        return cls(
            study_id=study.id,
            metrics=spec_metrics(study),
            directions=[str(d).lower() for d in study.directions or []],
            param_names=list(names),
            columns=list(TABLE_COLUMNS),
            rows=rows,
        )


@router.get(
    "/studies/{study_id}/trial-table",
    summary="Every trial of a study, compactly",
    description="One row per trial (number, state, values, parameters, start and end, epochs, "
    "attempt, the trial it retries, worker, device, accepted, origin), unpaginated: the web UI "
    "draws its charts and trials table from it.",
)
def trial_table(session: SessionDep, study: StudyDep) -> TrialTable:
    return TrialTable.of(study, studies.trial_table(session, study))
