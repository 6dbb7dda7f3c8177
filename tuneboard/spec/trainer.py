"""The built-in trainer's options: its hyperparameters, early stopping and callbacks.

This module is the one owner of the trainer's defaults. The spec models below and the trainer in
``workers/training`` (which parses a trial's config without pydantic) both take them from here,
so a study that leaves an option out gets the same value wherever it is read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from tuneboard.spec import catalog
from tuneboard.spec._problems import Loc, _did_you_mean, _error, _listing, _Problems, _Spec
from tuneboard.spec.scalars import JsonBool, JsonFloat, JsonInt
from tuneboard.spec.space import AnyParam, CategoricalParam, FloatParam

__all__ = [
    "DEFAULT_MAX_EPOCHS",
    "DEFAULT_MONITOR",
    "DEFAULT_PATIENCE",
    "DEFAULT_VALIDATION_FRACTION",
    "TRAINER_PARAM_DEFAULTS",
    "CallbacksSpec",
    "CheckpointKind",
    "CheckpointSpec",
    "EarlyStoppingSpec",
    "LRScheduleSpec",
    "TrainerParams",
]

DEFAULT_MAX_EPOCHS = 20
DEFAULT_VALIDATION_FRACTION = 0.2
# What early stopping and checkpoints watch, and how long early stopping waits, when not said.
DEFAULT_MONITOR = "val_loss"
DEFAULT_PATIENCE = 5


@dataclass(frozen=True)
class TrainerParams:
    """The hyperparameters the built-in trainer reads from ``params`` (search space or
    ``fixed``), with the defaults it uses when a study leaves them out.

    A built-in study naming any other parameter is rejected, so a typo ("learning_rate") cannot
    be silently ignored.
    """

    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9  # momentum / nesterov / rmsprop
    beta1: float = 0.9  # adam / adamw
    beta2: float = 0.999
    eps: float = 1e-8
    rho: float = 0.9  # adadelta
    alpha: float = 0.99  # rmsprop smoothing
    weight_decay: float = 0.0
    batch_size: int = 64
    hidden: int = 128  # width of each hidden layer (mlp) / of the dense head (cnn)
    layers: int = 2  # number of hidden layers (mlp)
    channels: int = 16  # first conv width (cnn); doubled in the second block
    dropout: float = 0.0
    norm: str = "none"  # none | batch | layer
    activation: str = "relu"  # relu | gelu | tanh | silu
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0  # > 0 turns mixup on (image-shaped data)
    cutmix_alpha: float = 0.0  # > 0 turns cutmix on (image-shaped data)
    # Image augmentation of training batches (image-shaped data): a transform is on when its
    # maximum (pixels, degrees) and its probability per sample are above 0.
    aug_crop_pad: int = 0  # random crop after zero padding by this many pixels
    aug_crop_p: float = 1.0
    aug_shift: int = 0  # random shift by up to this many pixels, border repeated
    aug_shift_p: float = 1.0
    aug_rotate_deg: float = 0.0  # random rotation by up to this many degrees either way
    aug_rotate_p: float = 1.0
    aug_flip_p: float = 0.0  # horizontal flip
    step_size: int = 10  # step schedule: epochs between decays
    gamma: float = 0.1  # step schedule: decay factor


TRAINER_PARAM_DEFAULTS: dict[str, object] = dataclasses.asdict(TrainerParams())


def _resolve_mode(monitor: str, mode: Literal["min", "max", "auto"]) -> Literal["min", "max"]:
    if mode != "auto":
        return mode
    return "max" if catalog.better_direction(monitor) == "maximize" else "min"


class EarlyStoppingSpec(_Spec):
    """Stop a trial once ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    ``mode: auto`` follows the metric's name (losses, errors: min; accuracy, f1, auc, r2: max)
    and is refused for a metric whose better side the name does not tell; see ``resolved_mode``.
    """

    monitor: str = Field(DEFAULT_MONITOR, min_length=1, max_length=200)
    mode: Literal["min", "max", "auto"] = "auto"
    patience: JsonInt = Field(DEFAULT_PATIENCE, ge=0)
    min_delta: JsonFloat = Field(0.0, ge=0)
    restore_best: JsonBool = True

    @property
    def resolved_mode(self) -> Literal["min", "max"]:
        return _resolve_mode(self.monitor, self.mode)


CheckpointKind = Literal["latest", "best"]


def _keep_latest() -> list[CheckpointKind]:
    return ["latest"]


class CheckpointSpec(_Spec):
    """Which checkpoints to keep: ``latest`` (to resume a retried trial) and/or ``best``."""

    keep: list[CheckpointKind] = Field(default_factory=_keep_latest, min_length=1)
    monitor: str = Field(DEFAULT_MONITOR, min_length=1, max_length=200)
    mode: Literal["min", "max", "auto"] = "auto"

    @field_validator("keep")
    @classmethod
    def _distinct(cls, value: list[CheckpointKind]) -> list[CheckpointKind]:
        if len(set(value)) != len(value):
            raise _error("invalid_choices", "keep lists latest and best at most once each.")
        return value

    @property
    def resolved_mode(self) -> Literal["min", "max"]:
        return _resolve_mode(self.monitor, self.mode)


_LR_SCHEDULE_FIELDS: dict[str, tuple[str, ...]] = {
    "constant": (),
    "step": ("step_size", "gamma"),
    "cosine": ("min_lr",),
    "linear": ("min_lr",),
    "inverse_sqrt": (),
    "reduce_on_plateau": ("factor", "patience", "min_lr", "monitor"),
}


class LRScheduleSpec(_Spec):
    """The learning-rate schedule after ``warmup_epochs`` of linear warm-up.

    step: step_size, gamma (when left out, the trainer's step_size and gamma parameters apply,
    which may also be tuned); cosine / linear: min_lr; reduce_on_plateau: factor, patience,
    min_lr, monitor (default val_loss).
    """

    type: str = Field(json_schema_extra={"enum": list(catalog.LR_SCHEDULES)})
    warmup_epochs: JsonInt = Field(0, ge=0)
    step_size: JsonInt | None = Field(None, ge=1)
    gamma: JsonFloat | None = Field(None, gt=0, le=1)
    factor: JsonFloat | None = Field(None, gt=0, lt=1)
    patience: JsonInt | None = Field(None, ge=0)
    min_lr: JsonFloat | None = Field(None, ge=0)
    monitor: str | None = Field(None, min_length=1, max_length=200)

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in catalog.LR_SCHEDULES:
            raise _error(
                "unknown_name",
                f"Unknown lr schedule {value!r}; valid schedules: "
                f"{_listing(catalog.LR_SCHEDULES)}.",
            )
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = _Problems("LRScheduleSpec")
        takes = _LR_SCHEDULE_FIELDS[self.type]
        for key in ("step_size", "gamma", "factor", "patience", "min_lr", "monitor"):
            value = getattr(self, key)
            if value is not None and key not in takes:
                listing = f"it takes: {_listing(takes)}" if takes else "it takes only warmup_epochs"
                problems.add(
                    (key,), f"{key} does not apply to the {self.type} schedule; {listing}.", value
                )
        problems.raise_if_any()
        return self


class CallbacksSpec(_Spec):
    """Trainer callbacks: TerminateOnNaN, ModelCheckpoint and the LR schedule (constant if None)."""

    terminate_on_nan: JsonBool = True
    checkpoint: CheckpointSpec | None = Field(default_factory=CheckpointSpec)
    lr_schedule: LRScheduleSpec | None = None


def _trainer_value_problem(name: str, value: Any) -> str | None:
    """Why ``value`` is not valid for the trainer's parameter ``name``, or None."""
    choices = catalog.PARAM_CHOICES.get(name)
    if choices is not None:
        if isinstance(value, str) and value in choices:
            return None
        hint = _did_you_mean(value, choices) if isinstance(value, str) else ""
        return f"Unknown {name} {value!r}.{hint} Valid: {_listing(choices)}."
    if name in catalog.INTEGER_PARAMS:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{name} must be a whole number, not {value!r}."
    elif isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} must be a number, not {value!r}."
    bounds = catalog.PARAM_BOUNDS.get(name)
    if bounds is not None and not bounds.contains(value):
        return f"{name} must be {bounds.describe()}, not {value:g}."
    return None


def _check_trainer_param(
    name: str, param: AnyParam, problems: _Problems
) -> None:
    loc: Loc = ("search_space", name)
    if isinstance(param, CategoricalParam):
        for i, choice in enumerate(param.choices):
            reason = _trainer_value_problem(name, choice)
            if reason:
                problems.add((*loc, "choices", i), reason, choice)
        return
    if name in catalog.PARAM_CHOICES:
        problems.add(
            (*loc, "type"),
            f"{name} takes a name ({_listing(catalog.PARAM_CHOICES[name])}); "
            "use type: categorical.",
            param.type,
        )
        return
    if name in catalog.INTEGER_PARAMS and isinstance(param, FloatParam):
        problems.add(
            (*loc, "type"), f"{name} must be a whole number; use type: int.", param.type
        )
        return
    bounds = catalog.PARAM_BOUNDS.get(name)
    if bounds is None:
        return
    for key, value in (("low", param.low), ("high", param.high)):
        if not bounds.contains(value):
            problems.add(
                (*loc, key), f"{name} must be {bounds.describe()}, but {key} is {value:g}.", value
            )
