from __future__ import annotations

from typing import Any

import pytest

from tests.tuneboard.standards.support import baseline, spec
from tuneboard.standards import Violation, check_spec, scale_warnings


def _violations(
    search_space: dict[str, Any] | None = None, fixed: dict[str, Any] | None = None
) -> list[Violation]:
    return check_spec(spec(search_space=search_space or {}, fixed=fixed or {}), baseline())


def test_a_spec_inside_every_rule_passes() -> None:
    assert check_spec(spec(), baseline()) == []


def test_params_the_spec_does_not_mention_are_no_violation() -> None:
    assert _violations({"dropout": {"type": "float", "low": 0, "high": 0.9}}) == []


def test_float_range_leaving_the_rule() -> None:
    [v] = _violations({"lr": {"type": "float", "low": 1e-6, "high": 0.1, "log": True}})
    assert v.rule == "lr" and v.field == "search_space.lr"
    assert "low 1e-06" in v.reason and "high 0.1" in v.reason and "rule 'lr'" in v.reason
    assert v.found == {"low": 1e-6, "high": 0.1}
    assert v.range is not None and v.range.high == 1e-2


def test_float_bounds_equal_to_the_rule_pass_despite_float_noise() -> None:
    assert _violations({"lr": {"type": "float", "low": 1.0e-5, "high": 0.01}}) == []


def test_int_range_leaving_the_rule_carries_the_rationale() -> None:
    [v] = _violations({"batch_size": {"type": "int", "low": 8, "high": 256}})
    assert v.rule == "batch_size" and "low 8" in v.reason
    assert v.rationale == "smaller batches tend to flatter minima."


def test_categorical_choices_outside_allowed() -> None:
    [v] = _violations({"optimizer": {"type": "categorical", "choices": ["adam", "rmsprop", "sgd"]}})
    assert v.found == ["rmsprop"] and "rmsprop" in v.reason
    assert v.allowed == ["sgd", "momentum", "adam", "adamw"]
    assert v.rationale.startswith("Adam")


def test_categorical_against_a_range() -> None:
    [v] = _violations({"batch_size": {"type": "categorical", "choices": [16, 1024]}})
    assert v.found == [1024]
    [v] = _violations({"batch_size": {"type": "categorical", "choices": [16, "big"]}})
    assert "not numbers" in v.reason and v.found == ["big"]


def test_numeric_param_against_an_allowed_list() -> None:
    [v] = _violations({"optimizer": {"type": "float", "low": 0, "high": 1}})
    assert "allows only the values" in v.reason
    assert _violations({"hidden": {"type": "int", "low": 64, "high": 256, "step": 64}}) != []
    assert _violations({"hidden": {"type": "int", "low": 64, "high": 128, "step": 64}}) == []
    [v] = _violations({"hidden": {"type": "float", "low": 64, "high": 256}})
    assert "continuous" in v.reason
    assert _violations({"hidden": {"type": "categorical", "choices": [64, 128.0]}}) == []


@pytest.mark.parametrize(
    ("fixed", "ok"),
    [
        ({"optimizer": "adam"}, True),
        ({"optimizer": "rmsprop"}, False),
        ({"lr": 1e-3}, True),
        ({"lr": 0.5}, False),
        ({"lr": "fast"}, False),
        ({"lr": True}, False),
        ({"hidden": 128.0}, True),
        ({"hidden": 100}, False),
        ({"batch_size": 16}, True),
    ],
)
def test_fixed_values(fixed: dict[str, Any], ok: bool) -> None:
    violations = _violations(fixed=fixed)
    assert (violations == []) is ok
    if not ok:
        [param] = fixed
        assert violations[0].field == f"fixed.{param}" and violations[0].found == fixed[param]


def test_log_scale_mismatch_is_a_warning_not_a_violation() -> None:
    s = spec(search_space={"lr": {"type": "float", "low": 1e-4, "high": 1e-2}})
    assert check_spec(s, baseline()) == []
    [warning] = scale_warnings(s, baseline())
    assert "linear scale" in warning and "'lr'" in warning


def test_malformed_specs_are_left_to_the_schema() -> None:
    odd = {"search_space": {"lr": "x", "batch_size": {"type": "int", "low": "a"}}, "fixed": 3}
    assert check_spec(odd, baseline()) == []
    assert check_spec({"search_space": [1]}, baseline()) == []
