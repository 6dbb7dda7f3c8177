"""Acceptance-aware search on a real task: does ``search: {prefer_accepted: true}`` find more
trials a standard accepts, for the same budget?

An MLP on digits (Tuneboard's built-in trainer, in-process Optuna as in ``bench/pruning.py``)
under a standard that asks for ``val_accuracy >= 0.95`` and ``generalization_gap <= 0.025``.
Each seed runs the same TPE sampler twice, without and with the criteria as constraints
(``optimization.constraints``, what a worker builds from the stored spec), and counts the
trials the standard's metric criteria accept and the best accepted value.

    python bench/prefer_accepted.py [--trials 20] [--epochs 10] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import optuna
import torch
from _common import DIGITS_OBJECTIVE, DIGITS_SPACE, trial_context

from tuneboard.optimization import make_sampler
from tuneboard.optimization.constraints import FINAL_METRICS_ATTR
from tuneboard.spec import SearchSpec, StudySpec
from tuneboard.standards.acceptance import evaluate
from tuneboard.standards.schemas import MetricCriterion
from tuneboard.studies.verdicts import encode_metrics

CRITERIA = [
    {"metric": "val_accuracy", "op": ">=", "value": 0.95},
    {"metric": "generalization_gap", "op": "<=", "value": 0.025},
]
SPEC: dict[str, Any] = {
    "name": "bench-prefer-accepted",
    "objective": {**DIGITS_OBJECTIVE, "max_epochs": 10},
    "search_space": {
        **DIGITS_SPACE,
        "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
    },
    "sampler": {"type": "tpe", "seed": 0, "options": {"n_startup_trials": 5}},
    "budget": {"n_trials": 20, "max_parallel": 1},
}


def run(spec: StudySpec, search: SearchSpec | None, workdir: Path) -> dict[str, float]:
    from workers.objectives import load_objective

    objective_fn = load_objective(spec.objective.model_dump(mode="json"))
    criteria = [MetricCriterion.model_validate(c) for c in CRITERIA]
    metric = spec.metrics[0]
    accepted: list[float] = []

    def objective(trial: optuna.Trial) -> float:
        last: dict[str, float] = {}
        result = objective_fn(
            trial_context(spec, trial, workdir, lambda _step, metrics: last.update(metrics))
        )
        final = {**last, **(result if isinstance(result, dict) else {metric: result})}
        # What the runner records before it tells the outcome; the constraints read it.
        trial.study._storage.set_trial_system_attr(
            trial._trial_id, FINAL_METRICS_ATTR, encode_metrics(final))
        if evaluate(criteria, final).accepted:
            accepted.append(float(final[metric]))
        return float(final[metric])

    sampler = make_sampler(spec.sampler, spec.search_space, n_objectives=1, search=search)
    study = optuna.create_study(direction=spec.directions[0], sampler=sampler)
    start = time.perf_counter()
    study.optimize(objective, n_trials=spec.budget.n_trials, catch=(Exception,))  # diverged
    return {"accepted": len(accepted), "best_accepted": max(accepted, default=float("nan")),
            "failed": sum(t.state == optuna.trial.TrialState.FAIL for t in study.trials),
            "best": max(t.value for t in study.trials if t.value is not None),
            "wall_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = SearchSpec.model_validate({"prefer_accepted": True, "constraints": CRITERIA})
    rows: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            raw = json.loads(json.dumps(SPEC))
            raw["objective"]["max_epochs"] = args.epochs
            raw["budget"]["n_trials"] = args.trials
            raw["sampler"]["seed"] = seed
            spec = StudySpec.model_validate(raw)
            rows["off"].append(run(spec, None, Path(tmp) / f"off-{seed}"))
            rows["on"].append(run(spec, search, Path(tmp) / f"on-{seed}"))
            off, on = rows["off"][-1], rows["on"][-1]
            print(f"seed {seed}: accepted {off['accepted']:.0f} -> {on['accepted']:.0f} of "
                  f"{args.trials}; best accepted {off['best_accepted']:.4f} -> "
                  f"{on['best_accepted']:.4f}", flush=True)
    print(f"{'prefer_accepted':>16} {'accepted (mean)':>16} {'best accepted':>14} "
          f"{'best any':>9} {'wall s':>7}")
    for name, runs in rows.items():
        print(f"{name:>16} {statistics.mean(r['accepted'] for r in runs):>16.1f} "
              f"{statistics.mean(r['best_accepted'] for r in runs):>14.4f} "
              f"{statistics.mean(r['best'] for r in runs):>9.4f} "
              f"{sum(r['wall_s'] for r in runs):>7.0f}")
    print(json.dumps({name: [{k: round(v, 4) for k, v in r.items()} for r in runs]
                      for name, runs in rows.items()}))


if __name__ == "__main__":
    main()
