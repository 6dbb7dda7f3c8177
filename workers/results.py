"""What an objective's outcome becomes in the store: the values Optuna ranks, the final metrics,
and the text of a failure.

An objective may return a number, a sequence of numbers (one per study metric, in the spec's
order) or a mapping of metric names to numbers. Only finite real numbers are values: a bool,
a string or NaN is the objective's bug and fails the trial with an :class:`ObjectiveResultError`
that names the metric, rather than a value that would silently rank first or last.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from tuneboard.db.engine import describe_db_error
from workers.outage import from_database
from workers.stopping import TrialAborted

__all__ = [
    "ERROR_MAX_CHARS",
    "TRACEBACK_TAIL_LINES",
    "ObjectiveResultError",
    "describe_failure",
    "final_metrics",
    "objective_values",
]

ERROR_MAX_CHARS = 4000
TRACEBACK_TAIL_LINES = 12


class ObjectiveResultError(ValueError):
    """The objective returned something that is not the study's metric value(s)."""


def objective_values(result: Any, metrics: Sequence[str]) -> list[float]:
    """The study metric value(s) out of what the objective returned."""
    if isinstance(result, Mapping):
        missing = [m for m in metrics if m not in result]
        if missing:
            raise ObjectiveResultError(
                f"the objective returned {', '.join(map(str, result)) or 'no metrics'} "
                f"but not the study metric {', '.join(missing)}"
            )
        raw = [result[m] for m in metrics]
    elif isinstance(result, Sequence) and not isinstance(result, str | bytes):
        raw = list(result)
    else:
        raw = [result]
    if len(raw) != len(metrics):
        raise ObjectiveResultError(
            f"the objective returned {len(raw)} value(s) for {len(metrics)} metric(s) "
            f"({', '.join(metrics)})"
        )
    values: list[float] = []
    for name, value in zip(metrics, raw, strict=True):
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise ObjectiveResultError(f"the objective returned {value!r} for {name}; "
                                       "expected a number")
        if not math.isfinite(float(value)):
            raise ObjectiveResultError(f"the objective returned {float(value)} for {name}")
        values.append(float(value))
    return values


def final_metrics(result: Any, metrics: Sequence[str]) -> dict[str, float]:
    """The objective's final metrics as floats (a bare value is the study metric's)."""
    if isinstance(result, Mapping):
        return {str(k): float(v) for k, v in result.items()
                if isinstance(v, int | float | np.number) and not isinstance(v, bool)}
    if len(metrics) == 1 and isinstance(result, int | float | np.number):
        return {metrics[0]: float(result)}
    return {}


def describe_failure(exc: BaseException) -> str:
    """``Type: message`` and the tail of the traceback: what a failed trial's ``error`` shows.
    An abort shows its reason alone, a bad result its message alone: neither is a crash."""
    if isinstance(exc, TrialAborted):
        return str(exc)
    head = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, ObjectiveResultError):
        return head
    if from_database(exc):
        # The driver's text quotes row values (PostgreSQL's DETAIL): the error's kind and
        # message, the frames of its traceback, and nothing of what it was raised from.
        head = describe_db_error(exc) if isinstance(exc, SQLAlchemyError) else head
        frames = "".join(traceback.format_tb(exc.__traceback__)).rstrip().splitlines()
        lines = ["Traceback (most recent call last):", *frames]
    else:
        lines = "".join(traceback.format_exception(exc)).rstrip().splitlines()
    tail = "\n".join(lines[-TRACEBACK_TAIL_LINES:])
    text = f"{head}\n\n{tail}"
    return text if len(text) <= ERROR_MAX_CHARS else text[: ERROR_MAX_CHARS - 3] + "..."
