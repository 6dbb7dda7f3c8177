"""A spec's search space in Optuna's terms: suggestions, distributions, user-given params, grids."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from tuneboard.spec import (
    AnyParam,
    CategoricalParam,
    ChoiceValue,
    FloatParam,
    IntParam,
    condition_holds,
    dependency_order,
)

__all__ = [
    "InvalidParamsError",
    "grid_search_space",
    "suggest_params",
    "to_distribution",
    "to_distributions",
    "validate_fixed_params",
]


class InvalidParamsError(ValueError):
    """User-given parameters that do not fit the search space; ``problems`` maps name to reason."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in self.problems.items()))


def to_distribution(param: AnyParam) -> BaseDistribution:
    if isinstance(param, FloatParam):
        return FloatDistribution(param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, IntParam):
        return IntDistribution(param.low, param.high, log=param.log, step=param.step)
    return CategoricalDistribution(param.choices)


def to_distributions(search_space: Mapping[str, AnyParam]) -> dict[str, BaseDistribution]:
    """Every parameter's Optuna distribution, conditional or not, in dependency order."""
    return {name: to_distribution(search_space[name]) for name in dependency_order(search_space)}


def suggest_params(
    trial: optuna.trial.Trial, search_space: Mapping[str, AnyParam]
) -> dict[str, Any]:
    """Ask ``trial`` for every parameter whose condition holds; skipped ones are left out."""
    params: dict[str, Any] = {}
    for name in dependency_order(search_space):
        param = search_space[name]
        if not condition_holds(param, params):
            continue
        if isinstance(param, FloatParam):
            params[name] = trial.suggest_float(
                name, param.low, param.high, log=param.log, step=param.step
            )
        elif isinstance(param, IntParam):
            params[name] = trial.suggest_int(
                name, param.low, param.high, log=param.log, step=param.step
            )
        else:
            params[name] = trial.suggest_categorical(name, param.choices)
    return params


def _same_choice(value: Any, choice: ChoiceValue) -> bool:
    return value == choice and isinstance(value, bool) == isinstance(choice, bool)


def _value_problem(param: AnyParam, value: Any) -> tuple[str | None, Any]:
    """Why ``value`` does not fit ``param`` (or None), and the value in the parameter's type."""
    if isinstance(param, CategoricalParam):
        for choice in param.choices:
            if _same_choice(value, choice):
                return None, choice
        return f"{value!r} is not one of the choices ({', '.join(map(repr, param.choices))})", value
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"must be a number, not {value!r}", value
    if not param.low <= value <= param.high:
        return f"{value!r} is not between {param.low} and {param.high}", value
    if isinstance(param, IntParam):
        if isinstance(value, float) and not value.is_integer():
            return f"must be a whole number, not {value!r}", value
        if (int(value) - param.low) % param.step:
            return f"{value!r} is not on the steps of {param.step} from {param.low}", value
        return None, int(value)
    if param.step is not None:
        k = (value - param.low) / param.step
        if abs(k - round(k)) > 1e-8:
            return f"{value!r} is not on the steps of {param.step} from {param.low}", value
    return None, float(value)


def validate_fixed_params(
    search_space: Mapping[str, AnyParam],
    params: Mapping[str, Any],
    *,
    require_all: bool = False,
) -> dict[str, Any]:
    """Check user-given values of search-space parameters (``POST /studies/{id}/trials``).

    Each value must lie in its parameter's range or choices; a conditional parameter is
    accepted only together with the parameters its condition names, and only when the
    condition holds. Parameters left out are sampled as usual, unless ``require_all`` (for the
    grid sampler, which cannot fill in part of a point): then every parameter that applies must
    be given. Returns the values converted to their parameters' types, in dependency order.
    Raises ``InvalidParamsError`` listing every problem.
    """
    problems: dict[str, str] = {}
    for name in params:
        if name not in search_space:
            problems[name] = (
                "not a parameter of this study's search space "
                f"(parameters: {', '.join(search_space)})"
            )
    converted: dict[str, Any] = {}
    for name in dependency_order(search_space):
        param = search_space[name]
        missing_deps = [d for d in param.when or {} if d not in params]
        if any(d in problems for d in param.when or {}):
            continue
        if name in params:
            if missing_deps:
                problems[name] = (
                    f"applies only under a condition on {', '.join(missing_deps)}; give "
                    f"{'it' if len(missing_deps) == 1 else 'them'} too"
                )
                continue
            if not condition_holds(param, converted):
                conditions = " and ".join(
                    f"{dep} is one of {', '.join(map(repr, values))}"
                    for dep, values in (param.when or {}).items()
                )
                problems[name] = f"applies only when {conditions}"
                continue
            reason, value = _value_problem(param, params[name])
            if reason is not None:
                problems[name] = reason
            else:
                converted[name] = value
        elif require_all and not missing_deps and condition_holds(param, converted):
            problems[name] = "missing; the grid sampler needs every parameter that applies"
    if problems:
        raise InvalidParamsError(problems)
    return converted


def grid_search_space(search_space: Mapping[str, AnyParam]) -> dict[str, list[Any]]:
    """The values of every parameter for ``GridSampler``; each needs choices or a step."""
    grid: dict[str, list[Any]] = {}
    for name, param in search_space.items():
        if isinstance(param, FloatParam) and param.step is None:
            raise ValueError(f"{name} has no step, so the grid sampler cannot enumerate it")
        grid[name] = list(param.grid_values())
    return grid
