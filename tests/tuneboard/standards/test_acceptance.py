from __future__ import annotations

import json
import math

from tests.tuneboard.standards.support import baseline
from tuneboard.standards import evaluate

CRITERIA = baseline().acceptance
METRIC_ONLY = CRITERIA[:2]


def test_all_criteria_pass() -> None:
    verdict = evaluate(
        CRITERIA,
        {"val_accuracy": 0.98, "generalization_gap": 0.01},
        {"val_accuracy": [0.98, 0.981, 0.979]},
    )
    assert verdict.accepted and not verdict.pending
    assert [c.passed for c in verdict.criteria] == [True, True, True]
    assert math.isclose(verdict.criteria[2].observed or 0, 0.001)


def test_a_failing_threshold_rejects_with_its_evidence() -> None:
    verdict = evaluate(METRIC_ONLY, {"val_accuracy": 0.96, "generalization_gap": 0.01})
    assert not verdict.accepted and not verdict.pending
    first = verdict.criteria[0]
    assert (first.metric, first.op, first.threshold, first.observed, first.passed) == (
        "val_accuracy", ">=", 0.97, 0.96, False
    )


def test_missing_and_nan_metrics_fail() -> None:
    verdict = evaluate(METRIC_ONLY, {"val_accuracy": float("nan")})
    assert not verdict.accepted
    assert verdict.criteria[0].detail.startswith("observed value is not finite")
    assert verdict.criteria[1].detail == "metric not reported"
    assert verdict.criteria[1].observed is None
    stored = verdict.model_dump()
    assert stored["criteria"][0]["observed"] == "nan"
    json.dumps(stored, allow_nan=False)
    assert evaluate(METRIC_ONLY, {"val_accuracy": "nan", "generalization_gap": 0}).accepted is False


def test_inf_fails_even_where_the_comparison_would_hold() -> None:
    verdict = evaluate(METRIC_ONLY, {"val_accuracy": 0.99, "generalization_gap": float("-inf")})
    assert not verdict.accepted and verdict.model_dump()["criteria"][1]["observed"] == "-inf"


def test_stability_pending_until_enough_seeds() -> None:
    good = {"val_accuracy": 0.98, "generalization_gap": 0.01}
    for evidence in (None, {"val_accuracy": [0.98, 0.981]}):
        verdict = evaluate(CRITERIA, good, evidence)
        assert verdict.pending and not verdict.accepted
        assert verdict.criteria[2].pending and "needs 3 seed runs" in verdict.criteria[2].detail


def test_stability_fails_on_spread_using_the_sample_std() -> None:
    good = {"val_accuracy": 0.98, "generalization_gap": 0.01}
    verdict = evaluate(CRITERIA, good, {"val_accuracy": [0.97, 0.98, 0.99]})
    assert not verdict.accepted and not verdict.pending
    assert math.isclose(verdict.criteria[2].observed or 0, 0.01)
    verdict = evaluate(CRITERIA, good, {"val_accuracy": [0.98, float("nan"), 0.98]})
    assert not verdict.accepted and not verdict.pending


def test_a_failure_is_final_even_while_stability_is_pending() -> None:
    verdict = evaluate(CRITERIA, {"val_accuracy": 0.5, "generalization_gap": 0.01})
    assert not verdict.accepted and not verdict.pending


def test_equality_and_no_criteria() -> None:
    [eq] = baseline(acceptance=[{"metric": "m", "op": "==", "value": 0.3}]).acceptance
    assert evaluate([eq], {"m": 0.1 + 0.2}).accepted
    assert evaluate([], {}).accepted
