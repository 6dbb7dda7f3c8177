"""Numbers in a spec are bounded where they are parsed: integer bounds within ±2**53, finite
floats everywhere, ``fixed`` included (NaN there used to be stored as null)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from tuneboard.errors import InvalidInput
from tuneboard.spec import EXAMPLE_SPEC, StudySpec


def fields_of(raw: str) -> list[str]:
    """The fields a 422 would name for this JSON body (parsed as the API parses it)."""
    with pytest.raises(ValidationError) as refused:
        StudySpec.model_validate(json.loads(raw))
    return [d["field"] for d in InvalidInput.from_validation_error(refused.value).details]


def body(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(EXAMPLE_SPEC)
    spec.update(changes)
    return spec


def with_param(name: str, param: dict[str, Any]) -> dict[str, Any]:
    spec = body()
    spec["search_space"][name] = param
    return spec


@pytest.mark.parametrize(
    "bound", ["1" + "0" * 400, str(2**63), str(2**53 + 1), str(-(2**53) - 1)]
)
def test_int_bounds_beyond_2_53_are_refused(bound: str) -> None:
    raw = json.dumps(with_param("hidden", {"type": "int", "low": 32, "high": 512}))
    raw = raw.replace('"high": 512', f'"high": {bound}') if not bound.startswith("-") else (
        raw.replace('"low": 32', f'"low": {bound}'))
    assert fields_of(raw) in (["search_space.hidden.high"], ["search_space.hidden.low"])


def test_int_bounds_at_2_53_are_fine() -> None:
    spec = body(search_space={"seed_like": {"type": "int", "low": -(2**53), "high": 2**53}},
                objective={"entrypoint": "x", "metric": "score", "direction": "maximize"})
    StudySpec.model_validate(spec)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_fixed_values_are_refused(token: str) -> None:
    raw = json.dumps(body(fixed={"weight_decay": 0.123456})).replace("0.123456", token)
    assert fields_of(raw) == ["fixed.weight_decay"]


def test_numbers_inside_fixed_lists_are_checked() -> None:
    raw = json.dumps(body(fixed={"weight_decay": 0.0, "betas": [0.9, 0.123456]})).replace(
        "0.123456", "NaN")
    assert "fixed.betas" in fields_of(raw)
    raw = json.dumps(body(fixed={"weight_decay": 0.0, "x": [1]})).replace("[1]", f"[{2**60}]")
    assert "fixed.x" in fields_of(raw)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "1e400"])
def test_non_finite_float_bounds_are_refused(token: str) -> None:
    raw = json.dumps(with_param("dropout", {"type": "float", "low": 0.0, "high": 0.5}))
    assert fields_of(raw.replace("0.5", token)) == ["search_space.dropout.high"]


def test_a_float_range_wider_than_a_float_is_refused() -> None:
    spec = body(search_space={"x": {"type": "float", "low": -1e308, "high": 1e308}},
                objective={"entrypoint": "x", "metric": "score", "direction": "maximize"})
    with pytest.raises(ValidationError, match="finite"):
        StudySpec.model_validate(spec)


def test_a_step_too_small_for_the_range_is_refused() -> None:
    spec = body(search_space={"x": {"type": "float", "low": 0.0, "high": 1e300,
                                    "step": 1e-300}},
                objective={"entrypoint": "x", "metric": "score", "direction": "maximize"})
    with pytest.raises(ValidationError, match="too small"):
        StudySpec.model_validate(spec)


def test_huge_integer_choices_are_refused() -> None:
    raw = json.dumps(with_param("mode", {"type": "categorical", "choices": [1, 2]}))
    raw = raw.replace("[1, 2]", f"[1, {2**64}]")
    spec = json.loads(raw)
    spec["objective"] = {"entrypoint": "x", "metric": "score", "direction": "maximize"}
    with pytest.raises(ValidationError, match="2\\*\\*53"):
        StudySpec.model_validate(spec)
