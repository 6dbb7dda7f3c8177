from __future__ import annotations

import json
import math
import random
import statistics

import pytest
from scipy import stats

from tests.tuneboard.standards.support import baseline
from tuneboard.errors import InvalidInput
from tuneboard.standards import Criterion, acceptance, evaluate, parse_document
from tuneboard.standards.schemas import wilcoxon_min_seeds

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


GOOD = {"val_accuracy": 0.98, "generalization_gap": 0.01}


def _stability(**spec: object) -> list[Criterion]:
    return baseline(acceptance=[{"stability": {"metric": "val_accuracy", **spec}}]).acceptance


def test_a_mean_threshold_is_judged_by_a_one_sided_t_bound_stored_with_the_verdict() -> None:
    criteria = _stability(seeds=3, min_mean=0.97, confidence=0.95)
    runs = [0.98, 0.981, 0.979]
    (result,) = evaluate(criteria, GOOD, {"val_accuracy": runs}).criteria
    mean, s = statistics.fmean(runs), statistics.stdev(runs)
    lower = mean - stats.t.ppf(0.95, 2) * s / math.sqrt(3)
    assert (result.kind, result.op, result.threshold, result.n, result.test) == (
        "stability", "mean>=", 0.97, 3, "t")
    assert result.passed and result.confidence == 0.95
    assert result.observed == pytest.approx(mean)
    assert result.interval is not None and result.interval[1] is None
    assert result.interval[0] == pytest.approx(lower)
    assert f"[{lower:.6g}, inf)" in result.detail
    stored = json.loads(json.dumps(evaluate(criteria, GOOD, {"val_accuracy": runs}).model_dump()))
    assert stored["criteria"][0]["interval"] == [pytest.approx(lower), None]

    # The same mean with a wider spread: the bound falls below the threshold.
    (wide,) = evaluate(criteria, GOOD, {"val_accuracy": [0.99, 0.98, 0.97]}).criteria
    assert not wide.passed and not wide.pending
    assert wide.interval is not None and wide.interval[0] is not None
    assert wide.interval[0] < 0.97 < (wide.observed or 0)
    assert "does not lie above 0.97" in wide.detail


def test_max_mean_bounds_from_above_and_a_higher_confidence_is_stricter() -> None:
    runs = [0.020, 0.024, 0.022, 0.021]
    mean, s = statistics.fmean(runs), statistics.stdev(runs)
    for confidence, passed in ((0.9, True), (0.99, False)):
        criteria = _stability(seeds=4, max_mean=0.0245, confidence=confidence)
        (result,) = evaluate(criteria, GOOD, {"val_accuracy": runs}).criteria
        upper = mean + stats.t.ppf(confidence, 3) * s / 2
        assert result.op == "mean<=" and result.interval == (None, pytest.approx(upper))
        assert result.passed is passed, (confidence, upper)


def test_std_and_mean_in_one_criterion_give_one_result_each() -> None:
    criteria = _stability(seeds=3, max_std=0.005, min_mean=0.97)
    verdict = evaluate(criteria, GOOD, {"val_accuracy": [0.98, 0.981, 0.979]})
    assert [(c.op, c.passed) for c in verdict.criteria] == [("std<=", True), ("mean>=", True)]
    assert verdict.accepted
    pending = evaluate(criteria, GOOD)
    assert pending.pending and [c.pending for c in pending.criteria] == [True, True]
    failed = evaluate(criteria, GOOD, {"val_accuracy": [0.98, float("nan"), 0.98]})
    assert not failed.accepted and not failed.pending
    assert [c.passed or c.pending for c in failed.criteria] == [False, False]


def test_the_wilcoxon_bound_agrees_with_scipys_exact_signed_rank_test() -> None:
    rng = random.Random(12)
    for _ in range(200):
        confidence = rng.choice([0.9, 0.95, 0.975])
        n = rng.randint(wilcoxon_min_seeds(confidence), 12)
        runs = [rng.gauss(0.97, 0.01) for _ in range(n)]
        threshold = rng.gauss(0.97, 0.01)
        criteria = _stability(seeds=n, min_mean=threshold, confidence=confidence,
                              test="wilcoxon")
        (result,) = evaluate(criteria, GOOD, {"val_accuracy": runs}).criteria
        test = stats.wilcoxon([v - threshold for v in runs], alternative="greater",
                              method="exact")
        assert result.passed is bool(test.pvalue <= 1 - confidence), (runs, threshold)
        walsh = [(a + b) / 2 for i, a in enumerate(runs) for b in runs[i:]]
        assert result.observed == pytest.approx(statistics.median(walsh))
        assert result.test == "wilcoxon" and result.n == n


def test_the_wilcoxon_bound_is_the_walsh_average_of_the_critical_rank() -> None:
    # n = 5 at 0.95: only T+ = 0 has P <= 0.05 (1/32), so the lower bound is the smallest
    # Walsh average, here the smallest run; at 0.90 P(T+ <= 2) = 3/32 (T+ = 0, 1, 2 each arise
    # one way) and P(T+ <= 3) = 5/32, so it is the third smallest.
    runs = [0.971, 0.975, 0.98, 0.982, 0.99]
    walsh = sorted((a + b) / 2 for i, a in enumerate(runs) for b in runs[i:])
    for confidence, rank in ((0.95, 0), (0.9, 2)):
        criteria = _stability(seeds=5, min_mean=0.97, confidence=confidence, test="wilcoxon")
        (result,) = evaluate(criteria, GOOD, {"val_accuracy": runs}).criteria
        assert result.interval == (pytest.approx(walsh[rank]), None) and result.passed


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"seeds": 3}, "asks nothing"),
        ({"seeds": 3, "min_mean": 0.9, "max_mean": 0.99}, "not both"),
        ({"seeds": 3, "min_mean": 0.9, "confidence": 0.5}, "greater than 0.5"),
        ({"seeds": 3, "min_mean": 0.9, "confidence": 1.0}, "less than 1"),
        ({"seeds": 1, "min_mean": 0.9}, "greater than or equal to 2"),
        ({"seeds": 4, "min_mean": 0.9, "test": "wilcoxon"}, "needs seeds >= 5"),
        ({"seeds": 6, "min_mean": 0.9, "test": "wilcoxon", "confidence": 0.99},
         "needs seeds >= 7"),
        ({"seeds": 3, "min_mean": float("inf")}, "finite"),
        ({"seeds": 3, "min_mean": 0.9, "test": "sign"}, "'t' or 'wilcoxon'"),
    ],
)
def test_invalid_stability_criteria_are_refused_at_their_field(
    spec: dict[str, object], reason: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_document({**baseline().model_dump(), "acceptance": [
            {"stability": {"metric": "val_accuracy", **spec}}]})
    assert all(d["field"].startswith("acceptance.0.stability") for d in caught.value.details)
    assert reason in caught.value.message, caught.value.message


def test_wilcoxon_minimum_seeds_follow_two_to_the_minus_n() -> None:
    assert [wilcoxon_min_seeds(c) for c in (0.75, 0.9, 0.95, 0.99)] == [2, 4, 5, 7]
    for confidence in (0.8, 0.9, 0.95, 0.975, 0.99):
        n = wilcoxon_min_seeds(confidence)
        assert 2.0**-n <= 1 - confidence < 2.0 ** -(n - 1)
    # A stored max_std-only criterion reads back unchanged.
    assert _stability(seeds=3, max_std=0.005)[0].model_dump()["stability"]["max_std"] == 0.005


ENSEMBLE_DOC = parse_document({
    "name": "ens", "acceptance": [{"metric": "val_loss", "op": "<=", "value": 0.5},
                                  {"ensemble": {"k": 3, "min_gain": 0.01}}],
})


def test_the_ensemble_criterion_is_study_level_and_left_out_of_trial_verdicts() -> None:
    verdict = evaluate(ENSEMBLE_DOC.acceptance, {"val_loss": 0.4})
    assert verdict.accepted and [c.metric for c in verdict.criteria] == ["val_loss"]
    only = parse_document({"name": "only", "acceptance": [{"ensemble": {"k": 2}}]})
    assert evaluate(only.acceptance, {}).accepted
    assert only.ensemble is not None and only.ensemble.min_gain == 0.0


@pytest.mark.parametrize(
    ("gain", "maximize", "observed", "passed"),
    [(0.02, True, 0.02, True), (0.005, True, 0.005, False), (-0.02, False, 0.02, True),
     (0.02, False, -0.02, False), (0.01, True, 0.01, True)],
)
def test_the_ensemble_gain_is_judged_in_the_study_direction(
    gain: float, maximize: bool, observed: float, passed: bool
) -> None:
    assert ENSEMBLE_DOC.ensemble is not None
    pending = acceptance.pending_ensemble(ENSEMBLE_DOC.ensemble, standard="ens@1")
    assert pending.pending and not pending.passed and pending.observed_gain is None

    judged = acceptance.judge_ensemble(pending, gain, maximize=maximize)

    assert not judged.pending and judged.passed is passed
    assert judged.observed_gain == pytest.approx(observed)
    assert judged.reason == ("" if passed else f"gain {observed:.6g} < min_gain 0.01")
    assert judged.criterion == "an ensemble of the 3 best accepted trials gains >= 0.01 on the " \
        "best of them"


def test_an_ensemble_without_a_finite_gain_fails_its_criterion() -> None:
    assert ENSEMBLE_DOC.ensemble is not None
    pending = acceptance.pending_ensemble(ENSEMBLE_DOC.ensemble)
    for gain in (None, math.nan):
        judged = acceptance.judge_ensemble(pending, gain, maximize=True)
        assert not judged.passed and not judged.pending and judged.observed_gain is None
        assert judged.reason == "the ensemble's gain is not a finite number"


@pytest.mark.parametrize(
    ("criterion", "reason"),
    [({"k": 1}, "greater than or equal to 2"), ({"k": 21}, "less than or equal to 20"),
     ({"k": 2, "min_gain": math.inf}, "finite"), ({"k": 2, "gain": 0.1}, "Extra inputs")],
)
def test_an_ensemble_criterion_is_validated(criterion: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_document({"name": "bad", "acceptance": [{"ensemble": criterion}]})
    assert caught.value.details[0]["field"].startswith("acceptance.0.ensemble")
    assert reason in caught.value.details[0]["reason"]


def test_a_standard_has_at_most_one_ensemble_criterion() -> None:
    with pytest.raises(InvalidInput, match="a study is judged by one ensemble"):
        parse_document({"name": "two", "acceptance": [{"ensemble": {"k": 2}},
                                                      {"ensemble": {"k": 3}}]})
