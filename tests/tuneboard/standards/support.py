"""A typical standard (a vision baseline with metric and stability criteria), and a spec that
keeps it."""

from __future__ import annotations

import copy
from typing import Any

from tuneboard.standards import StandardDocument

BASELINE: dict[str, Any] = {
    "name": "vision-baseline",
    "description": "House rules for small image classifiers.",
    "rules": [
        {
            "param": "optimizer",
            "allowed": ["sgd", "momentum", "adam", "adamw"],
            "default": "adam",
            "rationale": "Adam with beta1=0.9, beta2=0.999 is our starting point.",
        },
        {"param": "lr", "range": {"low": 1.0e-5, "high": 1.0e-2, "log": True}, "default": 1.0e-3},
        {
            "param": "batch_size",
            "range": {"low": 16, "high": 512},
            "rationale": "smaller batches tend to flatter minima.",
        },
        {"param": "hidden", "allowed": [64, 128, 256]},
    ],
    "defaults": {
        "early_stopping": {"monitor": "val_loss", "mode": "min", "patience": 5, "min_delta": 1e-4},
        "pruner": {"type": "hyperband"},
        "budget": {"max_retries": 2},
    },
    "acceptance": [
        {"metric": "val_accuracy", "op": ">=", "value": 0.97},
        {"metric": "generalization_gap", "op": "<=", "value": 0.03},
        {"stability": {"metric": "val_accuracy", "seeds": 3, "max_std": 0.005}},
    ],
}

GOOD_SPEC: dict[str, Any] = {
    "name": "digits-mlp",
    "standard": "vision-baseline",
    "objective": {"builtin": "classifier", "dataset": "digits", "model": "mlp",
                  "metric": "val_accuracy", "direction": "maximize", "max_epochs": 5},
    "search_space": {
        "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
        "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
        "batch_size": {"type": "int", "low": 16, "high": 256, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
    },
    "fixed": {"weight_decay": 0.0},
    "sampler": {"type": "tpe", "seed": 42},
    "budget": {"n_trials": 10},
}


def baseline(**changes: Any) -> StandardDocument:
    data = copy.deepcopy(BASELINE)
    data.update(changes)
    return StandardDocument.model_validate(data)


def spec(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(GOOD_SPEC)
    data.update(changes)
    return data
