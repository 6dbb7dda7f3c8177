"""A boolean is not a number, a number is not a boolean, a string is neither: the study spec
refuses what its schema does not say, and keeps what JSON itself allows."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from tuneboard.spec import EXAMPLE_SPEC, StudySpec


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(EXAMPLE_SPEC)
    node = spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return spec


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("budget", "max_retries"), False),
        (("budget", "n_trials"), True),
        (("budget", "n_trials"), "100"),
        (("budget", "timeout_s"), True),
        (("budget", "timeout_s"), "3600"),
        (("search_space", "lr", "low"), False),
        (("search_space", "lr", "log"), 1),
        (("search_space", "hidden", "step"), True),
        (("objective", "validation", "stratify"), "yes"),
        (("callbacks", "terminate_on_nan"), 0),
    ],
)
def test_a_value_of_another_json_type_is_refused_at_its_field(
    path: tuple[str, ...], value: Any
) -> None:
    with pytest.raises(ValidationError) as caught:
        StudySpec.model_validate(_with(path, value))
    assert [tuple(e["loc"]) for e in caught.value.errors()] == [path]


def test_integers_stand_for_numbers_and_whole_floats_for_integers() -> None:
    spec = StudySpec.model_validate(
        _with(("budget",), {"n_trials": 100.0, "timeout_s": 3600, "max_retries": 2})
    )
    assert spec.budget.n_trials == 100 and isinstance(spec.budget.n_trials, int)
    assert spec.budget.timeout_s == 3600.0 and isinstance(spec.budget.timeout_s, float)
    with pytest.raises(ValidationError):
        StudySpec.model_validate(_with(("budget", "n_trials"), 100.5))
