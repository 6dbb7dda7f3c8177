from __future__ import annotations

from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from tuneboard.optimization import (
    InvalidParamsError,
    grid_search_space,
    suggest_params,
    to_distributions,
    validate_fixed_params,
)
from tuneboard.spec import EXAMPLE_SPEC, AnyParam, StudySpec

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE: dict[str, AnyParam] = StudySpec.model_validate(EXAMPLE_SPEC).search_space


def nested_space() -> dict[str, AnyParam]:
    spec = {
        "name": "nested",
        "objective": {"entrypoint": "obj", "metric": "score", "direction": "maximize"},
        "search_space": {
            "depth": {"type": "int", "low": 1, "high": 4, "when": {"arch": ["deep"]}},
            "arch": {"type": "categorical", "choices": ["shallow", "deep"]},
            "residual": {
                "type": "categorical", "choices": [True, False], "when": {"arch": ["deep"]},
            },
            "gate": {
                "type": "float", "low": 0.0, "high": 1.0, "step": 0.25,
                "when": {"residual": [True]},
            },
        },
        "budget": {"n_trials": 1},
    }
    return StudySpec.model_validate(spec).search_space


def test_conditional_parameters_are_suggested_only_when_their_condition_holds() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: list[dict[str, Any]] = []
    for _ in range(30):
        trial = study.ask()
        params = suggest_params(trial, SPACE)
        seen.append(params)
        study.tell(trial, 0.0)
        assert trial.params == params
    for params in seen:
        assert ("momentum" in params) == (params["optimizer"] in ("momentum", "nesterov"))
        assert {"lr", "optimizer", "batch_size", "hidden", "dropout"} <= params.keys()
        assert 1e-5 <= params["lr"] <= 1e-1
        assert params["hidden"] % 32 == 0 and 32 <= params["hidden"] <= 512
        assert isinstance(params["batch_size"], int)
    assert any("momentum" in p for p in seen) and any("momentum" not in p for p in seen)


def test_nested_conditions_follow_the_chain() -> None:
    space = nested_space()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(30):
        trial = study.ask()
        params = suggest_params(trial, space)
        study.tell(trial, 0.0)
        deep = params["arch"] == "deep"
        assert ("depth" in params) == deep and ("residual" in params) == deep
        assert ("gate" in params) == (deep and params["residual"] is True)
        if "gate" in params:
            assert params["gate"] in (0.0, 0.25, 0.5, 0.75, 1.0)


def test_distributions_come_in_dependency_order() -> None:
    dists = to_distributions(nested_space())
    assert list(dists) == ["arch", "depth", "residual", "gate"]
    assert dists["depth"] == IntDistribution(1, 4)
    assert dists["gate"] == FloatDistribution(0.0, 1.0, step=0.25)
    assert dists["residual"] == CategoricalDistribution([True, False])
    assert to_distributions(SPACE)["lr"] == FloatDistribution(1e-5, 1e-1, log=True)


def test_valid_fixed_params_are_converted_to_their_types() -> None:
    given = {"batch_size": 32.0, "dropout": 0, "optimizer": "momentum", "momentum": 0.9}
    fixed = validate_fixed_params(SPACE, given)
    assert fixed == {"optimizer": "momentum", "momentum": 0.9, "batch_size": 32, "dropout": 0.0}
    assert isinstance(fixed["batch_size"], int) and isinstance(fixed["dropout"], float)
    assert list(fixed) == ["optimizer", "momentum", "batch_size", "dropout"]


@pytest.mark.parametrize(
    ("params", "name", "reason"),
    [
        ({"learning_rate": 0.1}, "learning_rate", "not a parameter of this study's search space"),
        ({"lr": 0.5}, "lr", "0.5 is not between 1e-05 and 0.1"),
        ({"lr": "0.01"}, "lr", "must be a number, not '0.01'"),
        ({"batch_size": True}, "batch_size", "must be a number, not True"),
        ({"batch_size": 32.5}, "batch_size", "must be a whole number"),
        ({"hidden": 40}, "hidden", "not on the steps of 32 from 32"),
        ({"optimizer": "adamx"}, "optimizer", "'adamx' is not one of the choices"),
        ({"momentum": 0.9}, "momentum", "applies only under a condition on optimizer"),
        ({"optimizer": "adam", "momentum": 0.9}, "momentum",
         "applies only when optimizer is one of 'momentum', 'nesterov'"),
    ],
)
def test_invalid_fixed_params_name_the_parameter_and_the_reason(
    params: dict[str, Any], name: str, reason: str
) -> None:
    with pytest.raises(InvalidParamsError) as info:
        validate_fixed_params(SPACE, params)
    assert list(info.value.problems) == [name]
    assert reason in info.value.problems[name]
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith(f"{name}: ")


def test_choices_keep_booleans_apart_from_numbers() -> None:
    space = nested_space()
    with pytest.raises(InvalidParamsError) as info:
        validate_fixed_params(space, {"arch": "deep", "residual": 1})
    assert "not one of the choices" in info.value.problems["residual"]
    assert validate_fixed_params(space, {"arch": "deep", "residual": True})["residual"] is True


def test_an_invalid_parent_does_not_blame_its_children() -> None:
    with pytest.raises(InvalidParamsError) as info:
        validate_fixed_params(SPACE, {"optimizer": "adamx", "momentum": 0.9})
    assert list(info.value.problems) == ["optimizer"]


def test_require_all_asks_for_every_parameter_that_applies() -> None:
    space = nested_space()
    assert validate_fixed_params(space, {"arch": "shallow"}, require_all=True) == {
        "arch": "shallow"
    }
    with pytest.raises(InvalidParamsError) as info:
        validate_fixed_params(space, {"arch": "deep", "depth": 2}, require_all=True)
    assert set(info.value.problems) == {"residual"}
    assert "missing" in info.value.problems["residual"]


def test_enqueued_fixed_params_are_what_the_trial_suggests() -> None:
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    fixed = validate_fixed_params(SPACE, {"optimizer": "nesterov", "momentum": 0.95, "hidden": 64})
    study.enqueue_trial(fixed)
    trial = study.ask()
    params = suggest_params(trial, SPACE)
    assert {k: params[k] for k in fixed} == fixed
    assert "lr" in params


def test_grid_search_space_enumerates_every_value() -> None:
    grid = grid_search_space(nested_space())
    assert grid == {
        "depth": [1, 2, 3, 4],
        "arch": ["shallow", "deep"],
        "residual": [True, False],
        "gate": [0.0, 0.25, 0.5, 0.75, 1.0],
    }
    with pytest.raises(ValueError, match="lr has no step"):
        grid_search_space(SPACE)
