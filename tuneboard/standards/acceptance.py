"""Judging a trial's results against a standard's acceptance criteria.

Decisions:
- A missing, null or non-numeric metric fails its criterion ("metric not reported"); so does a
  non-finite one (NaN, +-inf), whatever the operator.
- ``==`` compares with a relative tolerance of 1e-9.
- Stability is the sample standard deviation (ddof=1) of the metric over all the seed runs
  given, which must number at least ``seeds``; fewer leave the criterion pending.
- A verdict is final once any criterion fails: it is then rejected and not pending, even if
  stability evidence is still missing. Pending means "nothing failed, evidence still owed".
- No criteria: every result is accepted.
"""

from __future__ import annotations

import math
import operator
import statistics
from collections.abc import Callable, Mapping, Sequence

from tuneboard.standards.schemas import (
    Criterion,
    CriterionResult,
    MetricCriterion,
    StabilityCriterion,
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
    results = [
        _metric(c, metrics) if isinstance(c, MetricCriterion) else _stability(c, stability or {})
        for c in criteria
    ]
    failed = any(not r.passed and not r.pending for r in results)
    pending = not failed and any(r.pending for r in results)
    return Verdict(
        accepted=not failed and not pending,
        pending=pending,
        criteria=results,
        standard=standard,
    )


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
    criterion: StabilityCriterion, stability: Mapping[str, Sequence[object]]
) -> CriterionResult:
    spec = criterion.stability
    result = CriterionResult(
        kind="stability",
        metric=spec.metric,
        op="std<=",
        threshold=spec.max_std,
        observed=None,
        passed=False,
    )
    raw = stability.get(spec.metric) or []
    values = [to_float(v) for v in raw]
    if any(v is None or not math.isfinite(v) for v in values):
        result.detail = f"a seed run reported no finite {spec.metric}"
        return result
    finite = [v for v in values if v is not None]
    if len(finite) < spec.seeds:
        result.pending = True
        result.detail = f"needs {spec.seeds} seed runs, has {len(finite)}"
        return result
    std = statistics.stdev(finite)
    result.observed = std
    result.passed = std <= spec.max_std
    result.detail = (
        f"sample std {std:.6g} over {len(finite)} seeds "
        + ("<=" if result.passed else ">")
        + f" {spec.max_std:g}"
    )
    return result
