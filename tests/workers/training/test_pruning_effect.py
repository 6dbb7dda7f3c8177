"""A digits study with a pruner trains fewer epochs than the same study without one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from tuneboard.objective import TrialContext, TrialPruned
from tuneboard.optimization import make_pruner, make_sampler, suggest_params
from tuneboard.spec import StudySpec
from workers.training import train


def _spec(pruner: dict[str, Any] | None) -> StudySpec:
    return StudySpec.model_validate(
        {
            "name": "digits-pruning",
            "objective": {"builtin": "classifier", "dataset": "digits", "model": "mlp",
                          "metric": "val_accuracy", "direction": "maximize", "max_epochs": 6},
            "search_space": {
                "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
                "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
                "hidden": {"type": "int", "low": 16, "high": 64, "step": 16},
            },
            "sampler": {"type": "random", "seed": 3},
            "pruner": pruner,
            "budget": {"n_trials": 12},
        }
    )


def _epochs_trained(spec: StudySpec, tmp_path: Path) -> tuple[int, int]:
    epochs = 0

    def objective(trial: optuna.Trial) -> float:
        nonlocal epochs

        def reporter(step: int, metrics: Any) -> None:
            nonlocal epochs
            epochs += 1
            trial.report(float(metrics["val_accuracy"]), step)
            if trial.should_prune():
                raise TrialPruned()

        ctx = TrialContext(
            params=suggest_params(trial, spec.search_space), seed=trial.number,
            checkpoint_dir=tmp_path / str(trial.number),
            config={"objective": spec.objective.model_dump(mode="json"), "callbacks": None},
            reporter=reporter,
        )
        try:
            return float(train(ctx)["val_accuracy"])
        except TrialPruned as exc:
            raise optuna.TrialPruned() from exc

    study = optuna.create_study(
        direction="maximize",
        sampler=make_sampler(spec.sampler, spec.search_space, n_objectives=1),
        pruner=make_pruner(spec.pruner, max_steps=spec.objective.max_epochs),
    )
    study.optimize(objective, n_trials=spec.budget.n_trials)
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return epochs, pruned


def test_a_pruner_saves_epochs_on_digits(tmp_path: Path) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    unpruned, none_pruned = _epochs_trained(_spec(None), tmp_path / "none")
    pruned, n_pruned = _epochs_trained(
        _spec({"type": "median", "n_startup_trials": 3, "n_warmup_steps": 1}), tmp_path / "median"
    )
    assert none_pruned == 0 and unpruned == 12 * 6
    assert n_pruned > 0
    assert pruned < unpruned
