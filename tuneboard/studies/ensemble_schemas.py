"""What the ensemble routes take and return."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tuneboard.db.models import Ensemble, EnsembleState
from tuneboard.schemas import Number, UtcDatetime, View
from tuneboard.standards.schemas import MAX_ENSEMBLE_SIZE, EnsembleVerdict

__all__ = ["MAX_ENSEMBLE_SIZE", "EnsembleCreate", "EnsembleOut"]


class EnsembleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"k": 3}]})

    k: int = Field(
        ge=2, le=MAX_ENSEMBLE_SIZE,
        description="How many of the study's best complete trials to ensemble (at least 2).",
    )


class EnsembleOut(View):
    """An ensemble of a study's best trials and, once evaluated, how it compares with the best
    of them alone, both on the study's validation split."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 4, "study_id": 12, "k": 3, "state": "complete",
                    "metric": "val_accuracy", "members": [7, 2, 11],
                    "value": 0.9833, "best_single_value": 0.975, "gain": 0.0083,
                    "member_values": {"7": 0.975, "2": 0.9694, "11": 0.9667},
                    "error": None, "verdict": None, "created_by": "key:3",
                    "created_at": "2026-12-01T10:00:00Z", "finished_at": "2026-12-01T10:00:04Z",
                }
            ]
        }
    )

    id: int
    study_id: int
    k: int
    state: EnsembleState = Field(description="pending, running, complete or failed.")
    metric: str = Field(description="The study metric, evaluated on the validation split.")
    members: list[int] = Field(description="Trial numbers of the members, best first.")
    value: Number = Field(None, description="The ensemble's value of the metric.")
    best_single_value: Number = Field(
        None, description="The best member's value of the metric on the same split."
    )
    gain: Number = Field(
        None,
        description="value - best_single_value: positive is an improvement for a maximised "
        "metric, negative for a minimised one.",
    )
    member_values: dict[str, Number] | None = Field(
        None, description="Each member's own value of the metric, by trial number."
    )
    error: str | None = Field(None, description="Why the evaluation failed.")
    verdict: EnsembleVerdict | None = Field(
        None,
        description="Set when the study's standard asked for this ensemble in its acceptance "
        "(`ensemble: {k, min_gain}`): the study-level verdict, pending until it is evaluated.",
    )
    created_by: str
    created_at: UtcDatetime
    finished_at: UtcDatetime | None = None

    @classmethod
    def of(cls, ensemble: Ensemble) -> EnsembleOut:
        return cls.model_validate(ensemble)
