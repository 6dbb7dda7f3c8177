"""What an objective's return value becomes: values for Optuna, final metrics, failure text."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from workers.results import (
    ERROR_MAX_CHARS,
    ObjectiveResultError,
    describe_failure,
    final_metrics,
    objective_values,
)
from workers.stopping import TrialAborted


@pytest.mark.parametrize(
    ("result", "metrics", "values"),
    [
        (0.5, ["loss"], [0.5]),
        (np.float32(2.0), ["loss"], [2.0]),
        (3, ["loss"], [3.0]),
        ([1.0, 2], ["loss", "acc"], [1.0, 2.0]),
        ({"acc": 0.9, "loss": 0.1, "extra": "x"}, ["loss", "acc"], [0.1, 0.9]),
    ],
)
def test_values_in_the_order_of_the_study_metrics(
    result: Any, metrics: list[str], values: list[float]
) -> None:
    assert objective_values(result, metrics) == values


@pytest.mark.parametrize(
    ("result", "metrics", "message"),
    [
        (float("nan"), ["loss"], "the objective returned nan for loss"),
        (True, ["loss"], "the objective returned True for loss; expected a number"),
        ("0.5", ["loss"], "the objective returned '0.5' for loss; expected a number"),
        ([1.0], ["loss", "acc"], "the objective returned 1 value(s) for 2 metric(s) (loss, acc)"),
        ({"acc": 1.0}, ["loss"], "the objective returned acc but not the study metric loss"),
        ({}, ["loss"], "the objective returned no metrics but not the study metric loss"),
    ],
)
def test_what_is_not_a_value_is_refused_by_name(
    result: Any, metrics: list[str], message: str
) -> None:
    with pytest.raises(ObjectiveResultError) as caught:
        objective_values(result, metrics)
    assert str(caught.value) == message


def test_final_metrics_keep_the_numbers() -> None:
    assert final_metrics({"loss": 1, "ok": True, "name": "x", "acc": np.float64(0.5)},
                         ["loss"]) == {"loss": 1.0, "acc": 0.5}
    assert final_metrics(0.25, ["loss"]) == {"loss": 0.25}
    assert final_metrics([0.25, 0.5], ["loss", "acc"]) == {}


def test_failure_text() -> None:
    assert describe_failure(TrialAborted("study cancelled")) == "study cancelled"
    assert describe_failure(ObjectiveResultError("bad")) == "ObjectiveResultError: bad"
    try:
        raise RuntimeError("boom " + "x" * 2 * ERROR_MAX_CHARS)
    except RuntimeError as exc:
        text = describe_failure(exc)
    assert text.startswith("RuntimeError: boom xx") and "Traceback" not in text.split("\n")[0]
    assert len(text) == ERROR_MAX_CHARS and text.endswith("...")
    try:
        raise KeyError
    except KeyError as exc:
        text = describe_failure(exc)
    assert text.startswith("KeyError\n\nTraceback (most recent call last):")
