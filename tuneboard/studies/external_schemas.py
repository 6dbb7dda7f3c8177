"""What the external-trial routes take and return (``POST .../trials/ask``, ``.../report``,
``.../heartbeat``, ``.../tell``).

Numbers a client sends must be finite: JSON has no NaN, and ``NaN``/``Infinity`` literals (which
Python's parser accepts) are refused with a 422 naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

from tuneboard.errors import InvalidInput
from tuneboard.schemas import JsonObject, UtcDatetime, View
from tuneboard.spec import JsonFloat, JsonInt

MAX_STEP = 2**31 - 1
MAX_STEPS_PER_REPORT = 1000
MAX_METRICS_PER_STEP = 200
MAX_ASK_COUNT = 100

MetricName = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class StepReport(_Request):
    """The metrics of one step (an epoch, say) of a running trial."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"step": 3, "metrics": {"val_loss": 0.41,
                                                                "val_accuracy": 0.88}}]}
    )

    step: JsonInt = Field(ge=0, le=MAX_STEP)
    metrics: dict[MetricName, JsonFloat] = Field(min_length=1, max_length=MAX_METRICS_PER_STEP)


_STEPS = TypeAdapter(
    Annotated[list[StepReport], Field(min_length=1, max_length=MAX_STEPS_PER_REPORT)]
)
# What ``parse_report`` takes, for the OpenAPI document (the route reads the body unparsed).
_STEP_SCHEMA = StepReport.model_json_schema()
REPORT_BODY_SCHEMA: dict[str, Any] = {"anyOf": [_STEP_SCHEMA, {
    "type": "array", "items": _STEP_SCHEMA, "minItems": 1, "maxItems": MAX_STEPS_PER_REPORT,
}]}


def parse_report(body: Any) -> list[StepReport]:
    """A report body: one ``{step, metrics}`` or a list of them. Errors name the field as the
    client wrote it (``metrics.val_loss``, or ``2.step`` in a list), not a union's branch."""
    try:
        if isinstance(body, list):
            return _STEPS.validate_python(body)
        return [StepReport.model_validate(body)]
    except ValidationError as exc:
        raise InvalidInput.from_validation_error(exc) from exc


_Values = Annotated[list[JsonFloat], Field(min_length=1, max_length=100)]


class TellRequest(_Request):
    """How a trial ended. ``complete`` needs the study metric's value(s): ``values`` (one per
    objective, in the spec's order; a bare number for one) or ``metrics`` that include them.
    ``params``, when given, must be the parameters the trial was handed."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [
            {"state": "complete", "metrics": {"val_accuracy": 0.97, "val_loss": 0.09}},
            {"state": "fail", "error": "CUDA out of memory"},
        ]}
    )

    state: Literal["complete", "pruned", "fail"]
    values: JsonFloat | _Values | None = None
    metrics: dict[MetricName, JsonFloat] | None = Field(None, max_length=MAX_METRICS_PER_STEP)
    error: str | None = Field(None, max_length=4000)
    params: dict[str, Any] | None = None


class AskedTrial(View):
    """A trial handed to a client: run it with ``params`` and report before ``lease_expires_at``."""

    number: int
    params: JsonObject
    lease_expires_at: UtcDatetime
    attempt: int = 1
    retry_of: int | None = Field(None, description="Number of the lost trial this one retries.")


class AskedTrials(View):
    """The trials of an ask with ``?count=K``: between 1 and K of them."""

    items: list[AskedTrial]


class ReportAnswer(View):
    """``should_prune``: the study's pruner says stop this trial (tell it ``pruned``).
    ``should_stop``: the study was cancelled, finished or ran out of time: stop and tell."""

    should_prune: bool
    should_stop: bool


class LeaseAnswer(View):
    lease_expires_at: UtcDatetime
    should_stop: bool
