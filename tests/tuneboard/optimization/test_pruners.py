from __future__ import annotations

from typing import Any

import optuna
import pytest
from optuna.pruners import HyperbandPruner, NopPruner, PatientPruner
from optuna.trial import TrialState

from tuneboard.optimization import make_pruner
from tuneboard.spec import PrunerSpec
from tuneboard.spec.catalog import PRUNERS

optuna.logging.set_verbosity(optuna.logging.WARNING)

STEPS = 10
BAD = [5.0] * STEPS
STALLING = [1.0, 0.8, 0.7, 0.71, 0.72, 0.73, 0.74, 0.75, 0.76, 0.77]


def good(i: int) -> list[float]:
    """A falling loss curve, a little better for each later trial."""
    return [1.0 / (step + 1) - 0.01 * i for step in range(STEPS)]


def run_curve(study: optuna.Study, curve: list[float]) -> int | None:
    """Report ``curve`` step by step as a worker does; the step it was pruned at, or None."""
    trial = study.ask()
    for step, value in enumerate(curve):
        trial.report(value, step)
        if trial.should_prune():
            study.tell(trial, state=TrialState.PRUNED)
            return step
    study.tell(trial, curve[-1])
    return None


def study_with_history(
    spec: dict[str, Any], *, max_steps: int | None = None, n_good: int = 12
) -> optuna.Study:
    pruner = make_pruner(PrunerSpec.model_validate(spec), max_steps=max_steps)
    study = optuna.create_study(study_name="curves", direction="minimize", pruner=pruner)
    assert [run_curve(study, good(i)) for i in range(n_good)] == [None] * n_good
    return study


CASES = [
    pytest.param({"type": "median"}, {}, 0, 0, id="median"),
    pytest.param({"type": "median", "n_warmup_steps": 3}, {}, 3, 3, id="median-warmup"),
    pytest.param({"type": "percentile", "percentile": 25.0}, {}, 0, 0, id="percentile"),
    pytest.param({"type": "successive_halving", "min_resource": 1, "reduction_factor": 2}, {},
                 1, 1, id="successive-halving"),
    # Hyperband puts trials in brackets by number: these two land in brackets with rungs 3 and 1.
    pytest.param({"type": "hyperband", "min_resource": 1, "reduction_factor": 3},
                 {"max_steps": STEPS}, 3, 1, id="hyperband"),
    pytest.param({"type": "threshold", "upper": 1.0}, {}, 0, None, id="threshold"),
    pytest.param({"type": "patience", "patience": 2, "wrapped": "none"}, {}, None, 5,
                 id="patience"),
    pytest.param({"type": "patience", "patience": 2}, {}, None, 5, id="patience-median"),
    pytest.param({"type": "wilcoxon"}, {}, 3, 3, id="wilcoxon"),
]


@pytest.mark.parametrize(("spec", "kwargs", "bad_step", "stalling_step"), CASES)
def test_pruners_stop_bad_curves_at_the_expected_step_and_keep_good_ones(
    spec: dict[str, Any], kwargs: dict[str, Any], bad_step: int | None, stalling_step: int | None
) -> None:
    study = study_with_history(spec, **kwargs)
    assert run_curve(study, BAD) == bad_step
    assert run_curve(study, STALLING) == stalling_step
    assert run_curve(study, good(20)) is None


def test_threshold_lower_bound_prunes_for_maximised_metrics() -> None:
    pruner = make_pruner(PrunerSpec(type="threshold", lower=0.5, n_warmup_steps=2))
    study = optuna.create_study(direction="maximize", pruner=pruner)
    assert run_curve(study, [0.1, 0.2, 0.3, 0.6]) == 2
    assert run_curve(study, [0.1, 0.2, 0.6, 0.9]) is None


def test_no_pruner_never_prunes() -> None:
    assert isinstance(make_pruner(None), NopPruner)
    study = study_with_history({"type": "none"})
    assert isinstance(study.pruner, NopPruner)
    assert run_curve(study, BAD) is None


def test_hyperband_takes_max_steps_for_auto() -> None:
    pruner = make_pruner(PrunerSpec(type="hyperband"), max_steps=27)
    assert isinstance(pruner, HyperbandPruner) and pruner._max_resource == 27
    given = make_pruner(PrunerSpec(type="hyperband", max_resource=9), max_steps=27)
    assert isinstance(given, HyperbandPruner) and given._max_resource == 9
    auto = make_pruner(PrunerSpec(type="hyperband"))
    assert isinstance(auto, HyperbandPruner) and auto._max_resource == "auto"


def test_patience_wraps_median_unless_told_not_to() -> None:
    wrapped = make_pruner(PrunerSpec(type="patience", patience=3))
    alone = make_pruner(PrunerSpec(type="patience", patience=3, wrapped="none"))
    assert isinstance(wrapped, PatientPruner) and isinstance(alone, PatientPruner)
    assert wrapped._wrapped_pruner is not None and alone._wrapped_pruner is None


def test_every_catalog_pruner_is_built() -> None:
    required: dict[str, dict[str, Any]] = {
        "percentile": {"percentile": 25.0},
        "threshold": {"upper": 1.0},
        "patience": {"patience": 2},
    }
    for kind in PRUNERS:
        assert make_pruner(PrunerSpec(type=kind, **required.get(kind, {})))
