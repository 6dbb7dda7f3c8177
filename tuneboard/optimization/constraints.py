"""A standard's metric acceptance criteria as Optuna sampler constraints (``prefer_accepted``).

Optuna's convention: a trial's constraint values are floats, feasible when every one is <= 0.
Criterion ``metric >= t`` (or ``>``) gives ``t - observed``, ``metric <= t`` (or ``<``) gives
``observed - t``, and ``metric == t`` gives ``|observed - t|``; a strict inequality met with
equality counts as feasible, a difference Optuna's samplers cannot see anyway. A metric the
trial did not report, or reported as NaN or infinite, gives ``MISSING_VIOLATION``: infeasible,
and worse than any real miss.

The values are computed from the final metrics the trial's runner records under
``FINAL_METRICS_ATTR`` before it tells Optuna the outcome; Optuna calls ``constraints_func`` as
the trial is told (complete or pruned) and stores what it returns as the trial's system attr
``constraints`` (``optuna.samplers._base._CONSTRAINTS_KEY``), where the samplers of every other
process read it. So the constraints come from the stored spec alone (``search.constraints``,
filled from the standard at admission), and every process builds the same function.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from optuna.samplers._base import _CONSTRAINTS_KEY
from optuna.trial import FrozenTrial

from tuneboard.spec import AcceptanceBound

__all__ = [
    "CONSTRAINTS_ATTR",
    "FINAL_METRICS_ATTR",
    "MISSING_VIOLATION",
    "constraint_values",
    "constraints_func",
]

# Where the runner records a trial's final metrics while it still runs (a finished trial's
# Optuna fields never change); the verdict and the constraints both read them from there.
FINAL_METRICS_ATTR = "tuneboard:final_metrics"
CONSTRAINTS_ATTR = _CONSTRAINTS_KEY
MISSING_VIOLATION = 1.0e9


def _observed(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)  # the store keeps non-finite values as "nan", "inf", "-inf"
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def constraint_values(
    bounds: Sequence[AcceptanceBound], metrics: Mapping[str, object]
) -> list[float]:
    """One value per bound, <= 0 where the final ``metrics`` meet it."""
    values = []
    for bound in bounds:
        observed = _observed(metrics.get(bound.metric))
        if observed is None:
            values.append(MISSING_VIOLATION)
        elif bound.op in (">=", ">"):
            values.append(bound.value - observed)
        elif bound.op in ("<=", "<"):
            values.append(observed - bound.value)
        else:
            values.append(abs(observed - bound.value))
    return values


def constraints_func(
    bounds: Sequence[AcceptanceBound],
) -> Callable[[FrozenTrial], Sequence[float]]:
    """Optuna's ``constraints_func`` for ``bounds``, reading the trial's recorded final metrics."""
    frozen = tuple(bounds)

    def constraints(trial: FrozenTrial) -> Sequence[float]:
        metrics = trial.system_attrs.get(FINAL_METRICS_ATTR) or {}
        return tuple(constraint_values(frozen, metrics))

    return constraints
