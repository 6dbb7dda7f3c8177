"""Run an external study's trials in your own Python code (here a toy loss curve).

    TUNEBOARD_URL=http://127.0.0.1:8000 TUNEBOARD_API_KEY=tb_... python examples/external_python.py

Tuneboard suggests the parameters, decides pruning and keeps the record; this script runs the
trials. It prints the study's final state as JSON.
"""

from __future__ import annotations

import json
import math

from tuneboard.client import Trial, Tuneboard

SPEC = {
    "name": "toy-loss-curve",
    "objective": {"external": True, "metric": "val_accuracy", "direction": "maximize",
                  "max_epochs": 10},
    "search_space": {
        "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
        "width": {"type": "int", "low": 8, "high": 128, "log": True},
    },
    "sampler": {"type": "tpe", "seed": 0},
    "pruner": {"type": "median", "n_startup_trials": 3, "n_warmup_steps": 2},
    "budget": {"n_trials": 12, "max_parallel": 4},
}


def accuracy(params: dict[str, float], epoch: int) -> float:
    """A made-up learning curve: best near lr=0.03, better with width, rising with epochs."""
    closeness = math.exp(-(math.log10(params["lr"]) + 1.5) ** 2)
    return 0.5 + 0.45 * closeness * (1 - math.exp(-(epoch + 1) / 3)) + params["width"] / 1e4


def train(trial: Trial) -> dict[str, float]:
    for epoch in range(10):
        value = accuracy(trial.params, epoch)
        trial.report(epoch, val_accuracy=value, val_loss=1 - value)  # raises TrialPruned
    return {"val_accuracy": value, "val_loss": 1 - value}


def main() -> None:
    with Tuneboard() as tb:  # TUNEBOARD_URL, TUNEBOARD_API_KEY
        study = tb.create_study(SPEC)
        # Ask-and-tell by hand, for the first few trials...
        for trial in study.trials(n=4):
            with trial:  # a prune ends just this trial; an exception fails it
                for epoch in range(10):
                    value = accuracy(trial.params, epoch)
                    trial.report(epoch, val_accuracy=value, val_loss=1 - value)
                trial.complete(val_accuracy=value)
        # ...then the rest of the budget on four threads.
        study.optimize(train, n_workers=4)
        info = study.refresh().info
        print(json.dumps({"study": study.id, "state": info["state"], "counts": info["counts"]}))


if __name__ == "__main__":
    main()
