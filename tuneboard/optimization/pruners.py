"""Optuna pruners from a spec's ``pruner`` section.

A step is an epoch: the worker reports the study metric once per epoch with the epoch as step.
Hyperband's ``max_resource: auto`` becomes ``max_steps`` (the objective's max_epochs) when
given. Optuna's own ``auto`` reads it off the first finished trials, which early stopping cuts
short, and each worker process would settle on its own value and so on its own brackets.
"""

from __future__ import annotations

import warnings

from optuna.exceptions import ExperimentalWarning
from optuna.pruners import (
    BasePruner,
    HyperbandPruner,
    MedianPruner,
    NopPruner,
    PatientPruner,
    PercentilePruner,
    SuccessiveHalvingPruner,
    ThresholdPruner,
    WilcoxonPruner,
)

from tuneboard.spec import PrunerSpec

__all__ = ["make_pruner"]

_MEDIAN_OPTIONS = ("n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials")


def make_pruner(spec: PrunerSpec | None, *, max_steps: int | None = None) -> BasePruner:
    """The pruner ``spec`` describes; ``NopPruner`` for None or ``type: none``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return _build(spec, max_steps)


def _build(spec: PrunerSpec | None, max_steps: int | None) -> BasePruner:
    if spec is None or spec.type == "none":
        return NopPruner()
    options = spec.options()
    median_options = {k: v for k, v in options.items() if k in _MEDIAN_OPTIONS}
    if spec.type == "median":
        return MedianPruner(**median_options)
    if spec.type == "percentile":
        return PercentilePruner(options["percentile"], **median_options)
    if spec.type == "successive_halving":
        return SuccessiveHalvingPruner(**options)
    if spec.type == "hyperband":
        if options.get("max_resource", "auto") == "auto" and max_steps is not None:
            options["max_resource"] = max_steps
        return HyperbandPruner(**options)
    if spec.type == "threshold":
        return ThresholdPruner(**options)
    if spec.type == "patience":
        wrapped = MedianPruner(**median_options) if spec.wrapped != "none" else None
        return PatientPruner(
            wrapped, patience=options["patience"], min_delta=options.get("min_delta", 0.0)
        )
    if spec.type == "wilcoxon":
        return WilcoxonPruner(**options)
    raise ValueError(f"unknown pruner {spec.type!r}")
