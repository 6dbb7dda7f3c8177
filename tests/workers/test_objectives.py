"""The objective registry, with the entry points of tests/fixtures/objective_pkg installed."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from tuneboard.objective import TrialContext
from workers.objectives import (
    ObjectiveLoadError,
    UnknownObjective,
    available_objectives,
    load_objective,
)
from workers.training import train


def test_builtins_are_the_trainer() -> None:
    assert load_objective({"builtin": "classifier", "dataset": "iris"}) is train
    assert load_objective({"builtin": "regressor", "dataset": "diabetes"}) is train


def test_entry_point_objective_loads_and_runs() -> None:
    steps: list[int] = []

    def reporter(step: int, metrics: Mapping[str, float]) -> None:
        steps.append(step)
        assert set(metrics) == {"loss"}

    objective = load_objective({"entrypoint": "quadratic"})
    result = objective(TrialContext(params={"x": 2.0, "y": -1.0}, reporter=reporter))
    assert steps == [1, 2, 3, 4, 5]
    assert isinstance(result, dict)
    assert result["loss"] == pytest.approx(0.2)


def test_entry_point_objective_honours_should_stop() -> None:
    objective = load_objective({"entrypoint": "quadratic"})
    result = objective(TrialContext(params={}, stop_requested=lambda: True))
    assert isinstance(result, dict) and result["steps_run"] == 1.0


def test_available_objectives() -> None:
    assert available_objectives("builtin") == ["classifier", "regressor"]
    assert "quadratic" in available_objectives("entrypoint")
    assert set(available_objectives()) >= {"classifier", "regressor", "quadratic"}


def test_unknown_names_are_lookup_errors() -> None:
    with pytest.raises(UnknownObjective, match="no objective 'nope' in entry-point group"):
        load_objective({"entrypoint": "nope"})
    with pytest.raises(UnknownObjective, match="no built-in objective 'ranker'"):
        load_objective({"builtin": "ranker"})
    assert issubclass(UnknownObjective, LookupError)


def test_unusable_entry_point() -> None:
    with pytest.raises(ObjectiveLoadError, match="not callable"):
        load_objective({"entrypoint": "not-callable"})


def test_exactly_one_kind() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        load_objective({"builtin": "classifier", "entrypoint": "quadratic"})
    with pytest.raises(ValueError, match="exactly one"):
        load_objective({"dataset": "iris"})
