from __future__ import annotations

import math
import warnings
from typing import Any

import optuna
import pytest
from optuna.storages import InMemoryStorage

from tuneboard.optimization import make_sampler, suggest_params
from tuneboard.spec import MULTI_OBJECTIVE_SAMPLERS, AnyParam, SamplerSpec, StudySpec
from tuneboard.spec.catalog import SAMPLERS

optuna.logging.set_verbosity(optuna.logging.WARNING)

OPTIONS: dict[str, dict[str, Any]] = {
    "tpe": {"n_startup_trials": 3},
    "gp": {"n_startup_trials": 4},
    "nsga2": {"population_size": 4},
    "cmaes": {"n_startup_trials": 2},
}


def space(*, grid: bool = False) -> dict[str, AnyParam]:
    step = {"step": 0.5} if grid else {}
    spec = {
        "name": "s",
        "objective": {"entrypoint": "obj", "metric": "loss", "direction": "minimize"},
        "search_space": {
            "x": {"type": "float", "low": -1.0, "high": 1.0, **step},
            "n": {"type": "int", "low": 1, "high": 4},
            "kind": {"type": "categorical", "choices": ["a", "b"]},
            "y": {"type": "float", "low": 0.0, "high": 1.0, **step, "when": {"kind": ["b"]}},
        },
        "budget": {"n_trials": 1},
    }
    return StudySpec.model_validate(spec).search_space


def sampler_spec(kind: str, seed: int | None = 7) -> SamplerSpec:
    return SamplerSpec(type=kind, seed=seed, options=OPTIONS.get(kind, {}))


def run_trials(study: optuna.Study, kind: str, n: int, n_objectives: int = 1) -> None:
    n = 6 if kind == "gp" else n
    params_space = space(grid=kind == "grid")
    for number in range(n):
        study.sampler = make_sampler(
            sampler_spec(kind), params_space, n_objectives=n_objectives, trial_seed_offset=number
        )
        trial = study.ask()
        params = suggest_params(trial, params_space)
        assert ("y" in params) == (params["kind"] == "b")
        loss = (params["x"] - 0.3) ** 2 + 0.1 * params["n"] + params.get("y", 0.5)
        study.tell(trial, loss if n_objectives == 1 else [loss, abs(params["x"]) + params["n"]])


@pytest.mark.parametrize("kind", SAMPLERS)
def test_every_sampler_runs_a_conditional_space(kind: str) -> None:
    study = optuna.create_study(direction="minimize")
    run_trials(study, kind, 8)
    values = [t.value for t in study.trials]
    assert len(values) >= 6 and all(v is not None and math.isfinite(v) for v in values)


@pytest.mark.parametrize("kind", MULTI_OBJECTIVE_SAMPLERS)
def test_multi_objective_samplers_run(kind: str) -> None:
    study = optuna.create_study(directions=["minimize", "minimize"])
    run_trials(study, kind, 8, n_objectives=2)
    assert len(study.trials) >= 6
    assert study.best_trials


def test_cmaes_refuses_several_objectives() -> None:
    with pytest.raises(ValueError, match="single objective"):
        make_sampler(SamplerSpec(type="cmaes"), space(), n_objectives=2)


def ask_first_point(study: optuna.Study, kind: str, offset: int) -> dict[str, Any]:
    params_space = space(grid=kind == "grid")
    study.sampler = make_sampler(
        sampler_spec(kind), params_space, n_objectives=1, trial_seed_offset=offset
    )
    return suggest_params(study.ask(), params_space)


@pytest.mark.parametrize("kind", SAMPLERS)
def test_two_worker_processes_with_one_seed_propose_different_points(kind: str) -> None:
    storage = InMemoryStorage()
    name = optuna.create_study(storage=storage, study_name=f"two-workers-{kind}").study_name
    worker_a = optuna.load_study(study_name=name, storage=storage)
    worker_b = optuna.load_study(study_name=name, storage=storage)
    first = ask_first_point(worker_a, kind, offset=0)
    second = ask_first_point(worker_b, kind, offset=1)
    assert first != second


@pytest.mark.parametrize("kind", ["random", "tpe", "cmaes", "gp", "nsga2"])
def test_a_trial_is_reproducible_from_seed_and_offset(kind: str) -> None:
    one = ask_first_point(optuna.create_study(), kind, offset=3)
    two = ask_first_point(optuna.create_study(), kind, offset=3)
    assert one == two


def test_grid_visits_each_point_once_with_ask_and_tell_and_survives_its_end() -> None:
    params_space = {
        "n": space()["n"],
        "kind": space()["kind"],
        "y": space(grid=True)["y"],
    }
    size = 4 * 2 * 3
    storage = InMemoryStorage()
    name = optuna.create_study(storage=storage).study_name
    for number in range(size + 2):
        study = optuna.load_study(
            study_name=name,
            storage=storage,
            sampler=make_sampler(
                SamplerSpec(type="grid", seed=3), params_space, n_objectives=1,
                trial_seed_offset=number,
            ),
        )
        trial = study.ask()
        suggest_params(trial, params_space)
        study.tell(trial, 0.0)
    grid_ids = [t.system_attrs["grid_id"] for t in study.trials]
    assert sorted(grid_ids[:size]) == list(range(size))
    assert isinstance(study.sampler, optuna.samplers.GridSampler)
    assert study.sampler.is_exhausted(study)


def test_grid_with_optimize_stops_when_exhausted() -> None:
    params_space = {k: v for k, v in space(grid=True).items() if k in ("x", "kind")}
    sampler = make_sampler(SamplerSpec(type="grid"), params_space, n_objectives=1)
    study = optuna.create_study(sampler=sampler)
    study.optimize(lambda t: suggest_params(t, params_space)["x"], n_trials=50)
    assert len(study.trials) == 5 * 2


def test_sampler_construction_is_quiet() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kind in SAMPLERS:
            make_sampler(sampler_spec(kind), space(grid=kind == "grid"), n_objectives=1)
