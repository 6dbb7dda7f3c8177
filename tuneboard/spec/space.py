"""The search space: float, int and categorical parameters, and their ``when`` conditions.

A parameter with ``when: {optimizer: [momentum, nesterov]}`` applies only to trials whose
categorical ``optimizer`` took one of those values; :func:`dependency_order` gives an order in
which every condition is decided before the parameter it guards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import Discriminator, Field, field_validator, model_validator

from tuneboard.spec._problems import _listing, _Problems, _raise_at, _Spec
from tuneboard.spec.scalars import JsonBool, JsonFloat, JsonInt

__all__ = [
    "MAX_GRID_SIZE",
    "MAX_SAFE_INT",
    "AnyParam",
    "CategoricalParam",
    "ChoiceValue",
    "FloatParam",
    "IntParam",
    "ParamSpec",
    "condition_holds",
    "dependency_order",
]

ChoiceValue = str | int | float | bool | None

MAX_GRID_SIZE = 100_000

# Integers a JSON reader anywhere reads exactly (a float's 53-bit mantissa), and every sampler and
# trainer can turn into a float without overflow.
MAX_SAFE_INT = 2**53
SafeInt = Annotated[JsonInt, Field(ge=-MAX_SAFE_INT, le=MAX_SAFE_INT)]


def _number_problem(value: Any) -> str | None:
    """Why a number in free-form JSON (``fixed``) cannot be kept, looking into lists and
    objects: a float that is not finite, or an integer beyond ±2**53; None when all are fine."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, not {value}."
    if isinstance(value, int) and abs(value) > MAX_SAFE_INT:
        return "an integer must lie within ±2**53."
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    return next((r for r in map(_number_problem, items) if r), None)


def _check_when(when: dict[str, list[Any]] | None, problems: _Problems) -> None:
    if when is None:
        return
    if not when:
        problems.add(
            ("when",),
            "when needs at least one condition; leave it out for a parameter that always applies.",
            when,
        )
    for dep, values in when.items():
        if not values:
            problems.add(("when", dep), f"List at least one value of {dep!r} that enables it.")


class FloatParam(_Spec):
    """A real-valued parameter in [low, high]; ``log`` samples on a log scale, ``step`` a grid."""

    type: Literal["float"]
    low: JsonFloat
    high: JsonFloat
    log: JsonBool = False
    step: JsonFloat | None = None
    when: dict[str, list[Any]] | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = _Problems("FloatParam")
        if self.low >= self.high:
            problems.add(
                ("high",),
                f"low must be less than high, but low is {self.low:g} and high is {self.high:g}.",
                self.high,
            )
        elif not math.isfinite(self.high - self.low):
            problems.add(
                ("high",), "high - low must be a finite number; narrow the range.", self.high
            )
        if self.log and self.low <= 0:
            problems.add(
                ("low",), f"A log scale needs low > 0, but low is {self.low:g}.", self.low
            )
        if self.step is not None:
            if self.log:
                problems.add(
                    ("step",), "step cannot be combined with log: true; drop one of them.",
                    self.step,
                )
            elif self.step <= 0:
                problems.add(
                    ("step",), f"step must be greater than 0, not {self.step:g}.", self.step
                )
            elif self.low < self.high and math.isfinite(self.high - self.low):
                n = (self.high - self.low) / self.step
                if not math.isfinite(n):
                    problems.add(("step",), f"step {self.step:g} is too small for the range.",
                                 self.step)
                elif abs(n - round(n)) > 1e-6:
                    fit = float(
                        Decimal(repr(self.low)) + math.floor(n) * Decimal(repr(self.step))
                    )
                    problems.add(
                        ("step",),
                        f"high - low ({self.high - self.low:g}) must be a whole number of steps "
                        f"of {self.step:g}; try high = {fit:g}.",
                        self.step,
                    )
        _check_when(self.when, problems)
        problems.raise_if_any()
        return self

    def grid_size(self) -> int | None:
        """Number of values on the grid, None without a step (the range is continuous)."""
        if self.step is None:
            return None
        return round((self.high - self.low) / self.step) + 1

    def grid_values(self) -> list[float]:
        size = self.grid_size()
        if size is None:
            raise ValueError("a float parameter without a step has no grid")
        low, step = Decimal(repr(self.low)), Decimal(repr(self.step))
        return [float(low + i * step) for i in range(size)]


class IntParam(_Spec):
    """An integer parameter in [low, high] (both included), every ``step``-th value."""

    type: Literal["int"]
    low: SafeInt
    high: SafeInt
    log: JsonBool = False
    step: Annotated[JsonInt, Field(le=MAX_SAFE_INT)] = 1
    when: dict[str, list[Any]] | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = _Problems("IntParam")
        if self.low >= self.high:
            problems.add(
                ("high",),
                f"low must be less than high, but low is {self.low} and high is {self.high}.",
                self.high,
            )
        if self.log and self.low < 1:
            problems.add(
                ("low",), f"A log scale needs low >= 1, but low is {self.low}.", self.low
            )
        if self.log and self.step != 1:
            problems.add(
                ("step",), "step cannot be combined with log: true; drop one of them.", self.step
            )
        elif self.step < 1:
            problems.add(("step",), f"step must be at least 1, not {self.step}.", self.step)
        elif self.low < self.high and (self.high - self.low) % self.step:
            fit = self.low + (self.high - self.low) // self.step * self.step
            problems.add(
                ("step",),
                f"high - low ({self.high - self.low}) must be a multiple of step ({self.step}); "
                f"try high = {fit}.",
                self.step,
            )
        _check_when(self.when, problems)
        problems.raise_if_any()
        return self

    def grid_size(self) -> int:
        return (self.high - self.low) // self.step + 1

    def grid_values(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))


class CategoricalParam(_Spec):
    """One of ``choices`` (strings, numbers, booleans or null)."""

    type: Literal["categorical"]
    choices: list[ChoiceValue]
    when: dict[str, list[Any]] | None = None

    @field_validator("choices", mode="before")
    @classmethod
    def _choice_types(cls, value: Any) -> Any:
        if isinstance(value, list):
            for i, choice in enumerate(value):
                if choice is not None and not isinstance(choice, str | int | float | bool):
                    _raise_at(
                        (i,),
                        f"A choice is a string, a number, true/false or null, not {choice!r}.",
                        choice,
                    )
                if isinstance(choice, int) and abs(choice) > MAX_SAFE_INT:
                    _raise_at((i,), "An integer choice must lie within ±2**53.", choice)
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = _Problems("CategoricalParam")
        if not self.choices:
            problems.add(("choices",), "choices needs at least one value.", self.choices)
        for j, value in enumerate(self.choices):
            if any(value == earlier for earlier in self.choices[:j]):
                problems.add(
                    ("choices", j),
                    f"choices must be distinct, but {value!r} appears twice "
                    "(1, 1.0 and true count as the same value).",
                    value,
                )
        _check_when(self.when, problems)
        problems.raise_if_any()
        return self

    def grid_size(self) -> int:
        return len(self.choices)

    def grid_values(self) -> list[ChoiceValue]:
        return list(self.choices)


ParamSpec = Annotated[FloatParam | IntParam | CategoricalParam, Discriminator("type")]
_PARAM_TYPES = ("float", "int", "categorical")


AnyParam = FloatParam | IntParam | CategoricalParam


def condition_holds(param: AnyParam, params: Mapping[str, Any]) -> bool:
    """Whether ``param`` applies given the values chosen so far (every ``when`` entry matches)."""
    if not param.when:
        return True
    return all(
        dep in params and any(params[dep] == v for v in values)
        for dep, values in param.when.items()
    )


def dependency_order(search_space: Mapping[str, AnyParam]) -> list[str]:
    """Parameter names with every parameter after those its ``when`` names, else in spec order."""
    order: list[str] = []
    placed: set[str] = set()
    pending = list(search_space)
    while pending:
        for name in pending:
            deps = search_space[name].when or {}
            if all(d in placed or d not in search_space for d in deps):
                order.append(name)
                placed.add(name)
                pending.remove(name)
                break
        else:
            raise ValueError(f"the conditions of {_listing(pending)} form a cycle")
    return order


def _find_cycle(search_space: Mapping[str, AnyParam]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for dep in search_space[name].when or {}:
            if dep not in search_space:
                continue
            if state.get(dep) == 1:
                return [*path[path.index(dep):], dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        path.pop()
        state[name] = 2
        return None

    for name in search_space:
        if name not in state and (cycle := visit(name)):
            return cycle
    return None
