from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.tuneboard.standards.support import BASELINE
from tuneboard.errors import InvalidInput
from tuneboard.standards import MetricCriterion, StabilityCriterion, parse_document


def _with(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASELINE)
    data.update(changes)
    return data


def _fields(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidInput) as info:
        parse_document(data)
    return {e["field"]: e["reason"] for e in info.value.details}


def test_the_baseline_example_parses_into_typed_criteria() -> None:
    doc = parse_document(BASELINE)
    assert [type(c) for c in doc.acceptance] == [
        MetricCriterion, MetricCriterion, StabilityCriterion
    ]
    assert doc.rule("lr") is not None and doc.rule("lr").range.log  # type: ignore[union-attr]
    assert parse_document(doc.model_dump(mode="json")) == doc


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"param": "lr", "allowed": [1], "range": {"low": 0, "high": 1}}, "not both"),
        ({"param": "lr"}, "constrains nothing"),
        ({"param": "lr", "range": {"low": 1, "high": 0}}, "must not exceed"),
        ({"param": "lr", "range": {"low": 0, "high": 1, "log": True}}, "needs low > 0"),
        ({"param": "lr", "range": {"low": 0, "high": 1}, "default": 2}, "outside its own range"),
        ({"param": "opt", "allowed": ["a"], "default": "b"}, "outside its own allowed"),
        ({"param": "opt", "allowed": ["a", "a"]}, "twice"),
        ({"param": "opt", "allowed": ["a"], "alowed": ["b"]}, "Extra inputs"),
    ],
)
def test_bad_rules_name_the_field_and_reason(rule: dict[str, Any], message: str) -> None:
    errors = _fields(_with(rules=[rule]))
    assert any(field.startswith("rules.0") and message in text for field, text in errors.items())


def test_bad_criteria_name_the_field_without_the_union_tag() -> None:
    errors = _fields(_with(acceptance=[
        {"metric": "val_accuracy", "op": "=>", "value": 0.9},
        {"stability": {"metric": "val_accuracy", "seeds": 1, "max_std": 0.01}},
        {"metric": "val_accuracy", "op": ">=", "value": float("nan")},
    ]))
    assert set(errors) == {"acceptance.0.op", "acceptance.1.stability.seeds", "acceptance.2.value"}


def test_document_level_checks() -> None:
    assert "second rule" in str(_fields(_with(rules=BASELINE["rules"] + [BASELINE["rules"][0]])))
    assert "name" in _fields(_with(name="has space"))
    errors = _fields(_with(defaults={"fixed": {"lr": 0.5}}))
    assert "defaults.fixed.lr" in str(errors)
    errors = _fields(_with(defaults={"fixed": {"lr": 0.002}}))
    assert "disagrees" in str(errors)
    errors = _fields(_with(defaults={"budget": {"n_trials": 0, "bogus": 1}}))
    assert "bogus" in errors["defaults.budget"]
    assert "unknown sampler" in _fields(_with(defaults={"sampler": {"type": "nope"}}))[
        "defaults.sampler"
    ]
    assert "defaults.objective" in _fields(_with(defaults={"objective": {}}))
