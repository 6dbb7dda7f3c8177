from __future__ import annotations

import dataclasses
from typing import Any

from tuneboard.spec import (
    DEFAULT_MAX_EPOCHS,
    DEFAULT_MONITOR,
    DEFAULT_PATIENCE,
    DEFAULT_VALIDATION_FRACTION,
    EXAMPLE_SPEC,
    TRAINER_PARAM_DEFAULTS,
    StudySpec,
    TrainerParams,
    catalog,
)


def test_defaults_are_the_trainer_params_dataclass() -> None:
    assert dataclasses.asdict(TrainerParams()) == TRAINER_PARAM_DEFAULTS
    integers = {f.name for f in dataclasses.fields(TrainerParams) if f.type == "int"}
    assert integers == catalog.INTEGER_PARAMS
    choices = {f.name for f in dataclasses.fields(TrainerParams) if f.type == "str"}
    assert choices == set(catalog.PARAM_CHOICES)
    for name, value in TRAINER_PARAM_DEFAULTS.items():
        bounds = catalog.PARAM_BOUNDS.get(name)
        if bounds is not None:
            assert isinstance(value, int | float) and bounds.contains(value), name


def test_a_spec_that_leaves_options_out_gets_the_shared_defaults() -> None:
    raw: dict[str, Any] = {
        **EXAMPLE_SPEC,
        "objective": {k: v for k, v in EXAMPLE_SPEC["objective"].items()
                      if k not in ("max_epochs", "validation")},
        "early_stopping": {"mode": "min"},
        "callbacks": {},
        "pruner": None,
    }
    spec = StudySpec.model_validate(raw)
    assert spec.objective.max_epochs == DEFAULT_MAX_EPOCHS
    assert spec.objective.validation.fraction == DEFAULT_VALIDATION_FRACTION
    assert spec.early_stopping is not None
    assert (spec.early_stopping.monitor, spec.early_stopping.patience) == (
        DEFAULT_MONITOR, DEFAULT_PATIENCE
    )
    assert spec.callbacks.checkpoint is not None
    assert spec.callbacks.checkpoint.monitor == DEFAULT_MONITOR
