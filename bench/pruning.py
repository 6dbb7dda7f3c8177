"""Pruning on a real tuning task: an MLP on digits, 40 trials of at most 30 epochs.

Runs plain in-process Optuna (``study.optimize``, the peer) with the study's sampler and, in
turn, no pruner and the spec's pruner; the objective is Tuneboard's built-in trainer. Prints the
epochs trained, the best validation accuracy and the wall time of each, and their ratios
(the target: >= 3x fewer epochs at < 0.5 points of accuracy regret).

    python bench/pruning.py [--trials 40] [--epochs 30] [--pruner hyperband]
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import torch
from _common import DIGITS_OBJECTIVE, DIGITS_SPACE, trial_context

from tuneboard.objective import TrialPruned
from tuneboard.optimization import make_pruner, make_sampler
from tuneboard.spec import StudySpec

SPEC: dict[str, Any] = {
    "name": "bench-digits-mlp",
    "objective": {**DIGITS_OBJECTIVE, "max_epochs": 30},
    "search_space": DIGITS_SPACE,
    "sampler": {"type": "tpe", "seed": 0},
    "budget": {"n_trials": 40, "max_parallel": 1},
}


def spec_with(trials: int, epochs: int, pruner: str | None) -> StudySpec:
    raw = copy.deepcopy(SPEC)
    raw["objective"]["max_epochs"] = epochs
    raw["budget"]["n_trials"] = trials
    if pruner:
        raw["pruner"] = {"type": pruner}
    return StudySpec.model_validate(raw)


def run(spec: StudySpec, workdir: Path) -> dict[str, float]:
    from workers.objectives import load_objective

    objective_fn = load_objective(spec.objective.model_dump(mode="json"))
    metric = spec.metrics[0]
    epochs = 0

    def objective(trial: optuna.Trial) -> float:
        nonlocal epochs
        def reporter(step: int, metrics: Any) -> None:
            nonlocal epochs
            epochs += 1
            trial.report(float(metrics[metric]), step)
            if trial.should_prune():
                raise TrialPruned(f"pruned at epoch {step}")

        try:
            result = objective_fn(trial_context(spec, trial, workdir, reporter))
        except TrialPruned as exc:
            raise optuna.TrialPruned(str(exc)) from exc
        return float(result[metric] if isinstance(result, dict) else result)

    sampler = make_sampler(spec.sampler, spec.search_space, n_objectives=1)
    pruner = make_pruner(spec.pruner, max_steps=spec.objective.max_epochs)
    study = optuna.create_study(direction=spec.directions[0], sampler=sampler, pruner=pruner)
    start = time.perf_counter()
    study.optimize(objective, n_trials=spec.budget.n_trials)
    wall = time.perf_counter() - start
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return {"epochs": epochs, "best": study.best_value, "wall_s": wall, "pruned": pruned}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--pruner", default="hyperband")
    args = parser.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        base = run(spec_with(args.trials, args.epochs, None), Path(tmp) / "none")
        pruned = run(spec_with(args.trials, args.epochs, args.pruner), Path(tmp) / "pruned")
    print(f"{'':>12} {'epochs':>8} {'best val_acc':>13} {'pruned':>7} {'wall s':>8}")
    for name, r in (("no pruning", base), (args.pruner, pruned)):
        print(f"{name:>12} {r['epochs']:>8.0f} {r['best']:>13.4f} {r['pruned']:>7.0f} "
              f"{r['wall_s']:>8.1f}")
    summary = {
        "epochs_ratio": base["epochs"] / max(pruned["epochs"], 1),
        "regret_points": 100 * (base["best"] - pruned["best"]),
        "wall_ratio": base["wall_s"] / pruned["wall_s"],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
