"""Judging a trial's results against a standard's acceptance criteria.

Decisions:
- A missing, null or non-numeric metric fails its criterion ("metric not reported"); so does a
  non-finite one (NaN, +-inf), whatever the operator.
- ``==`` compares with a relative tolerance of 1e-9.
- Stability is judged over all the seed runs given (the trial's own and its re-runs), which must
  number at least ``seeds``; fewer leave the criterion pending, and a run without a finite value
  fails it. A stability criterion gives one result per check it asks for, ``max_std`` first:
  - ``max_std``: the sample standard deviation (ddof=1) is at most ``max_std`` (op ``std<=``).
  - ``min_mean`` / ``max_mean`` (op ``mean>=`` / ``mean<=``): a one-sided confidence interval of
    the metric's centre at ``confidence`` must lie on the threshold's side: its lower bound
    >= ``min_mean``, or its upper bound <= ``max_mean``. The result stores the interval (None
    on the open side), ``n``, ``confidence`` and ``test``; ``observed`` is the point estimate.
  - ``test: t``: the mean, bounded by ``mean -/+ t(confidence, n-1) * s / sqrt(n)`` (scipy's
    Student t quantile). It assumes the seed runs' values are roughly normal.
  - ``test: wilcoxon``: the pseudo-median, estimated by Hodges-Lehmann (the median of the
    n(n+1)/2 Walsh averages (x_i + x_j)/2, i <= j) and bounded by the Walsh average whose rank
    inverts the exact one-sided signed-rank test: the lower bound is the (c+1)-th smallest, c
    the largest count with P(T+ <= c) <= 1 - confidence under the null. For data without ties,
    "bound > threshold" is exactly "the exact signed-rank test of the differences from the
    threshold rejects at 1 - confidence" (scipy.stats.wilcoxon, method="exact"). It assumes
    only a symmetric distribution, and needs the seeds ``wilcoxon_min_seeds`` says.
- A verdict is final once any criterion fails: it is then rejected and not pending, even if
  stability evidence is still missing. Pending means "nothing failed, evidence still owed".
- No criteria: every result is accepted.
- ``ensemble: {k, min_gain}`` is study-level: trials are judged by the other criteria alone (a
  standard whose only criterion it is accepts every complete trial). When a study under it ends
  ``completed`` (the dispatcher's finish path), an ensemble of its ``k`` best accepted trials
  with best checkpoints is asked for once, in that transaction, and its verdict is stored on
  the ensemble, pending until a worker has evaluated it (``studies/ensemble.py``):
  - ``observed_gain`` is the ensemble's improvement on its best member in the study's
    direction: ``value - best_single_value`` for a maximised metric, its negative for a
    minimised one; it passes when ``observed_gain >= min_gain`` (``min_gain: 0`` asks for an
    ensemble no worse than its best member; a negative one tolerates a loss).
  - Fewer than ``k`` such trials, an evaluation that failed, or a non-finite gain: passed
    false, with the reason. A study that fails or is cancelled is not judged; one extended and
    completed again is judged again on the trials it has then.
  - A study that could never satisfy it (not the built-in trainer, several or non-validation
    metrics, k-fold validation, no ``best`` checkpoints, ``n_trials`` below ``k``) is refused
    at submission with a 422 at the spec field that prevents it.
"""

from __future__ import annotations

import math
import operator
import statistics
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

from scipy import stats

from tuneboard.standards.schemas import (
    Criterion,
    CriterionResult,
    EnsembleSpec,
    EnsembleVerdict,
    MetricCriterion,
    StabilityCriterion,
    StabilitySpec,
    Verdict,
)

NOT_REPORTED = "metric not reported"

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12),
}


def evaluate(
    criteria: Sequence[Criterion],
    metrics: Mapping[str, object],
    stability: Mapping[str, Sequence[object]] | None = None,
    *,
    standard: str | None = None,
) -> Verdict:
    """``metrics``: the trial's final metrics by name. ``stability``: per metric, its final
    values over the seed re-runs (this trial's included); None when none have run yet."""
    results: list[CriterionResult] = []
    for c in criteria:
        if isinstance(c, MetricCriterion):
            results.append(_metric(c, metrics))
        elif isinstance(c, StabilityCriterion):
            results.extend(_stability(c.stability, stability or {}))
    failed = any(not r.passed and not r.pending for r in results)
    pending = not failed and any(r.pending for r in results)
    return Verdict(
        accepted=not failed and not pending,
        pending=pending,
        criteria=results,
        standard=standard,
    )


def pending_ensemble(spec: EnsembleSpec, *, standard: str | None = None) -> EnsembleVerdict:
    """The verdict of an ensemble criterion before its ensemble is evaluated."""
    return EnsembleVerdict(
        criterion=f"an ensemble of the {spec.k} best accepted trials gains >= "
        f"{spec.min_gain:g} on the best of them",
        k=spec.k, min_gain=spec.min_gain, standard=standard,
    )


def fail_ensemble(verdict: EnsembleVerdict, reason: str) -> EnsembleVerdict:
    """The criterion could not be judged (too few trials, a failed evaluation): not passed."""
    return verdict.model_copy(update={"passed": False, "pending": False, "reason": reason})


def judge_ensemble(
    verdict: EnsembleVerdict, gain: float | None, *, maximize: bool
) -> EnsembleVerdict:
    """Settle a pending verdict from the evaluated ensemble's ``gain`` (``value -
    best_single_value``; None when it is not finite)."""
    if gain is None or not math.isfinite(gain):
        return fail_ensemble(verdict, "the ensemble's gain is not a finite number")
    observed = gain if maximize else -gain
    passed = observed >= verdict.min_gain
    return verdict.model_copy(update={
        "observed_gain": observed, "passed": passed, "pending": False,
        "reason": "" if passed else f"gain {observed:.6g} < min_gain {verdict.min_gain:g}",
    })


def to_float(value: object) -> float | None:
    """A reported value as a float: numbers, and the store's "nan"/"inf"/"-inf" strings."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value.strip().lower() in ("nan", "inf", "+inf", "-inf"):
        return float(value.strip())
    return None


def _metric(criterion: MetricCriterion, metrics: Mapping[str, object]) -> CriterionResult:
    observed = to_float(metrics.get(criterion.metric))
    result = CriterionResult(
        kind="metric",
        metric=criterion.metric,
        op=criterion.op,
        threshold=criterion.value,
        observed=observed,
        passed=False,
    )
    if observed is None:
        result.detail = NOT_REPORTED
    elif not math.isfinite(observed):
        result.detail = f"observed value is not finite ({observed})"
    else:
        result.passed = _OPS[criterion.op](observed, criterion.value)
        result.detail = f"{observed:g} {criterion.op} {criterion.value:g}" + (
            "" if result.passed else " does not hold"
        )
    return result


def _stability(
    spec: StabilitySpec, stability: Mapping[str, Sequence[object]]
) -> list[CriterionResult]:
    results = []
    if spec.max_std is not None:
        results.append(CriterionResult(kind="stability", metric=spec.metric, op="std<=",
                                       threshold=spec.max_std, observed=None, passed=False))
    if spec.mean_threshold is not None:
        op = "mean>=" if spec.min_mean is not None else "mean<="
        results.append(CriterionResult(
            kind="stability", metric=spec.metric, op=op, threshold=spec.mean_threshold,
            observed=None, passed=False, confidence=spec.confidence, test=spec.test,
        ))
    values = [to_float(v) for v in stability.get(spec.metric) or []]
    finite = [v for v in values if v is not None and math.isfinite(v)]
    for result in results:
        if len(finite) < len(values):
            result.detail = f"a seed run reported no finite {spec.metric}"
        elif len(finite) < spec.seeds:
            result.pending = True
            result.detail = f"needs {spec.seeds} seed runs, has {len(finite)}"
        elif result.op == "std<=":
            _spread(result, finite)
        else:
            _centre(result, finite)
    return results


def _spread(result: CriterionResult, values: list[float]) -> None:
    std = statistics.stdev(values)
    result.observed = std
    result.passed = std <= result.threshold
    result.detail = (
        f"sample std {std:.6g} over {len(values)} seeds "
        + ("<=" if result.passed else ">")
        + f" {result.threshold:g}"
    )


def _centre(result: CriterionResult, values: list[float]) -> None:
    assert result.confidence is not None
    lower_side = result.op == "mean>="
    if result.test == "wilcoxon":
        estimate, bound = _hodges_lehmann(values, result.confidence, lower=lower_side)
        what = "Hodges-Lehmann pseudo-median"
    else:
        estimate, bound = _t_bound(values, result.confidence, lower=lower_side)
        what = "mean"
    result.observed, result.n = estimate, len(values)
    result.interval = (bound, None) if lower_side else (None, bound)
    result.passed = bound >= result.threshold if lower_side else bound <= result.threshold
    shown = f"[{bound:.6g}, inf)" if lower_side else f"(-inf, {bound:.6g}]"
    result.detail = (
        f"{what} {estimate:.6g} over {len(values)} seeds; one-sided {result.confidence:g} "
        f"{result.test} interval {shown} "
        + ("lies" if result.passed else "does not lie")
        + f" {'above' if lower_side else 'below'} {result.threshold:g}"
    )


def _t_bound(values: list[float], confidence: float, *, lower: bool) -> tuple[float, float]:
    n = len(values)
    mean = statistics.fmean(values)
    margin = float(stats.t.ppf(confidence, n - 1)) * statistics.stdev(values) / math.sqrt(n)
    return mean, (mean - margin if lower else mean + margin)


def _hodges_lehmann(
    values: list[float], confidence: float, *, lower: bool
) -> tuple[float, float]:
    n = len(values)
    walsh = sorted((values[i] + values[j]) / 2 for i in range(n) for j in range(i, n))
    c = _signed_rank_critical(n, 1.0 - confidence)
    if c < 0:  # fewer seeds than the schema allows at this confidence: no finite bound
        return statistics.median(walsh), -math.inf if lower else math.inf
    return statistics.median(walsh), (walsh[c] if lower else walsh[len(walsh) - 1 - c])


@lru_cache(maxsize=128)
def _signed_rank_critical(n: int, alpha: float) -> int:
    """The largest c with P(T+ <= c) <= alpha, T+ the signed-rank statistic of n differences
    under the null (each rank's sign a fair coin); -1 when even P(T+ = 0) = 2**-n exceeds it."""
    counts = [1]  # counts[s]: subsets of the ranks 1..r with sum s
    for r in range(1, n + 1):
        grown = counts + [0] * r
        for s, ways in enumerate(counts):
            grown[s + r] += ways
        counts = grown
    limit, cumulative, c = alpha * 2**n, 0, -1
    for s, ways in enumerate(counts):
        cumulative += ways
        if cumulative > limit:
            break
        c = s
    return c
