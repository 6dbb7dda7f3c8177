"""The catalog the API validates against and what the trainer implements are the same names."""

from __future__ import annotations

import dataclasses

from tuneboard.spec import TRAINER_PARAM_DEFAULTS, TrainerParams, catalog
from workers.training import (
    ACTIVATIONS,
    CLASSIFICATION_METRICS,
    DATASETS,
    MODELS,
    NORMS,
    OPTIMIZERS,
    REGRESSION_METRICS,
    SCHEDULES,
    HyperParams,
    load_dataset,
)


def test_datasets_and_their_tasks() -> None:
    assert set(DATASETS) == set(catalog.BUNDLED_DATASETS)
    for name, task in catalog.BUNDLED_DATASETS.items():
        dataset = load_dataset(name)
        assert dataset.task == task, name
        assert dataset.is_image == (name in catalog.IMAGE_DATASETS), name


def test_models_optimizers_schedules() -> None:
    assert tuple(MODELS) == catalog.MODELS
    assert tuple(OPTIMIZERS) == catalog.OPTIMIZERS
    assert tuple(SCHEDULES) == catalog.LR_SCHEDULES
    assert tuple(NORMS) == catalog.NORMS
    assert tuple(ACTIVATIONS) == catalog.ACTIVATIONS


def test_metrics() -> None:
    assert tuple(CLASSIFICATION_METRICS) == catalog.CLASSIFICATION_METRICS
    assert tuple(REGRESSION_METRICS) == catalog.REGRESSION_METRICS


def test_hyperparameters_and_defaults() -> None:
    # The trainer's hyperparameters are the spec's, so their defaults have one owner.
    assert issubclass(HyperParams, TrainerParams)
    assert [f.name for f in dataclasses.fields(HyperParams)] == list(TRAINER_PARAM_DEFAULTS)
    assert dataclasses.asdict(HyperParams.from_params({})) == TRAINER_PARAM_DEFAULTS
