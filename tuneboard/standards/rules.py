"""Checking a study spec against a standard's rules.

Works on the raw spec dict (``search_space`` entries with ``type``, ``low``, ``high``, ``log``,
``step``, ``choices``; ``fixed`` values), so it runs before or after the study schema and never
fails on a malformed spec: whatever it cannot read is left to the schema's 422.

Decisions:
- A rule constrains the values a study may try, not how it samples them. A log-scale rule
  range searched linearly (or the reverse) is therefore not a violation; it is a warning.
- A param the spec does not mention is no violation (``defaults.py`` may fill it in).
- A numeric search range under an ``allowed`` list passes only when every value it can take is
  allowed: an int range whose steps all land on allowed values, or a float range of one point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tuneboard.standards.schemas import (
    RangeSpec,
    Rule,
    StandardDocument,
    Violation,
    as_number,
)

MAX_ENUMERATED_INT_VALUES = 10_000
MAX_LISTED = 10


def check_spec(spec: Mapping[str, Any], doc: StandardDocument) -> list[Violation]:
    """Every way the spec's search space and fixed values leave the standard's rules."""
    violations: list[Violation] = []
    search_space = _mapping(spec.get("search_space"))
    fixed = _mapping(spec.get("fixed"))
    for rule in doc.rules:
        if rule.allowed is None and rule.range is None:
            continue
        if rule.param in search_space:
            entry = search_space[rule.param]
            if isinstance(entry, Mapping):
                violations.extend(_check_param(rule, entry))
        if rule.param in fixed:
            violation = _check_fixed(rule, fixed[rule.param])
            if violation is not None:
                violations.append(violation)
    return violations


def scale_warnings(spec: Mapping[str, Any], doc: StandardDocument) -> list[str]:
    """Search-space entries sampled on another scale than their rule's range suggests."""
    warnings: list[str] = []
    search_space = _mapping(spec.get("search_space"))
    for rule in doc.rules:
        entry = search_space.get(rule.param)
        if rule.range is None or not isinstance(entry, Mapping):
            continue
        if entry.get("type") not in ("float", "int"):
            continue
        log = bool(entry.get("log", False))
        if log != rule.range.log:
            scale, rule_scale = ("log", "linear") if log else ("linear", "log")
            warnings.append(
                f"search_space.{rule.param} is sampled on a {scale} scale; "
                f"rule {rule.param!r} describes a {rule_scale}-scale range {rule.range}"
            )
    return warnings


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _violation(rule: Rule, field: str, reason: str, found: Any) -> Violation:
    return Violation(
        rule=rule.param,
        field=field,
        reason=f"{field}: {reason} (rule {rule.param!r})",
        rationale=rule.rationale,
        allowed=rule.allowed,
        range=rule.range,
        found=found,
    )


def _check_param(rule: Rule, entry: Mapping[str, Any]) -> list[Violation]:
    field = f"search_space.{rule.param}"
    kind = entry.get("type")
    if kind == "categorical":
        return _check_choices(rule, field, entry.get("choices"))
    if kind in ("float", "int"):
        low, high = as_number(entry.get("low")), as_number(entry.get("high"))
        if low is None or high is None:
            return []
        if rule.range is not None:
            return _check_interval(rule, rule.range, field, low, high)
        return _check_numeric_against_allowed(rule, field, kind, entry, low, high)
    return []


def _check_choices(rule: Rule, field: str, choices: object) -> list[Violation]:
    if not isinstance(choices, list):
        return []
    if rule.allowed is not None:
        outside = [c for c in choices if not rule.admits(c)]
        if outside:
            return [_violation(rule, field, f"choices {_listed(outside)} are not allowed "
                               f"(allowed: {_listed(rule.allowed)})", outside)]
        return []
    assert rule.range is not None
    not_numbers = [c for c in choices if as_number(c) is None]
    if not_numbers:
        return [_violation(rule, field, f"choices {_listed(not_numbers)} are not numbers, but the "
                           f"rule sets a numeric range {rule.range}", not_numbers)]
    outside = [c for c in choices if not rule.admits(c)]
    if outside:
        return [_violation(rule, field, f"choices {_listed(outside)} leave the range {rule.range}",
                           outside)]
    return []


def _check_interval(
    rule: Rule, allowed: RangeSpec, field: str, low: float, high: float
) -> list[Violation]:
    problems = []
    if not allowed.contains(low):
        problems.append(f"low {low:g}")
    if not allowed.contains(high):
        problems.append(f"high {high:g}")
    if not problems:
        return []
    return [_violation(rule, field, f"[{low:g}, {high:g}] leaves the range {allowed}: "
                       + " and ".join(problems) + " outside", {"low": low, "high": high})]


def _check_numeric_against_allowed(
    rule: Rule, field: str, kind: str, entry: Mapping[str, Any], low: float, high: float
) -> list[Violation]:
    assert rule.allowed is not None
    found = {"low": low, "high": high}
    if all(as_number(a) is None for a in rule.allowed):
        return [_violation(rule, field, f"a {kind} range is searched, but the rule allows only "
                           f"the values {_listed(rule.allowed)}", found)]
    values = _enumerate(kind, entry, low, high)
    if values is None:
        return [_violation(rule, field, f"a continuous {kind} range [{low:g}, {high:g}] can take "
                           f"values outside {_listed(rule.allowed)}; search a categorical of "
                           "allowed values instead", found)]
    outside = [v for v in values if not rule.admits(v)]
    if outside:
        return [_violation(rule, field, f"the range [{low:g}, {high:g}] takes "
                           f"{_listed(outside)}, which are not allowed "
                           f"(allowed: {_listed(rule.allowed)})", found)]
    return []


def _enumerate(
    kind: str, entry: Mapping[str, Any], low: float, high: float
) -> list[float] | list[int] | None:
    """Every value a numeric search-space entry can take, when there are few enough."""
    if low == high:
        return [low]
    if kind != "int" or low > high:
        return None
    step = as_number(entry.get("step")) or 1.0
    if step <= 0 or (high - low) / step > MAX_ENUMERATED_INT_VALUES:
        return None
    count = math.floor((high - low) / step) + 1
    return [round(low + i * step) for i in range(count)]


def _check_fixed(rule: Rule, value: Any) -> Violation | None:
    field = f"fixed.{rule.param}"
    if rule.admits(value):
        return None
    if rule.allowed is not None:
        return _violation(rule, field, f"{value!r} is not allowed (allowed: "
                          f"{_listed(rule.allowed)})", value)
    assert rule.range is not None
    number = as_number(value)
    if number is None:
        return _violation(rule, field, f"{value!r} is not a number, but the rule sets a numeric "
                          f"range {rule.range}", value)
    return _violation(rule, field, f"{number:g} leaves the range {rule.range}", value)


def _listed(values: list[Any]) -> str:
    shown = [_short(v) for v in values[:MAX_LISTED]]
    more = f", ... ({len(values) - MAX_LISTED} more)" if len(values) > MAX_LISTED else ""
    return "[" + ", ".join(shown) + more + "]"


def _short(value: Any) -> str:
    number = as_number(value)
    if number is not None and not isinstance(value, int):
        return f"{number:g}"
    return repr(value) if isinstance(value, str) else str(value)

