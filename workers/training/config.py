"""The trainer's view of a trial: ``TrialContext.config`` and ``params``, parsed and checked.

The API validates study specs; this module still checks every value it reads, so a trial
started some other way (a test, the CLI, an old spec) fails with a message naming the field
rather than deep inside torch. Values that are ``None`` count as absent, except
``callbacks.checkpoint: null``, which turns checkpoints off (absent, it keeps ``latest``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tuneboard.objective import TrialContext
from tuneboard.spec import (
    DEFAULT_MAX_EPOCHS,
    DEFAULT_MONITOR,
    DEFAULT_PATIENCE,
    DEFAULT_VALIDATION_FRACTION,
    TRAINER_PARAM_DEFAULTS,
    TrainerParams,
)
from workers.training.datasets import Task
from workers.training.errors import TrainingConfigError
from workers.training.metrics import Mode, metric_mode

__all__ = [
    "CheckpointSpec",
    "EarlyStoppingSpec",
    "HyperParams",
    "ScheduleSpec",
    "TrainerConfig",
    "ValidationSpec",
]


@dataclass(frozen=True)
class HyperParams(TrainerParams):
    """:class:`~tuneboard.spec.TrainerParams`, parsed from a trial's ``params`` and checked.

    Each model or optimiser reads the ones that apply to it; ``label_smoothing`` is ignored for
    regression. Mixup works on any data; cutmix needs image-shaped data.
    """

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> HyperParams:
        unknown = sorted(set(params) - set(TRAINER_PARAM_DEFAULTS))
        if unknown:
            raise TrainingConfigError(
                f"params: the built-in trainer takes no {', '.join(unknown)}; "
                f"it takes {', '.join(TRAINER_PARAM_DEFAULTS)}"
            )
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = params.get(f.name)
            default = TRAINER_PARAM_DEFAULTS[f.name]
            value = default if raw is None else raw
            where = f"params.{f.name}"
            if f.type == "float":
                values[f.name] = _number(value, where)
            elif f.type == "int":
                values[f.name] = _integer(value, where)
            else:
                values[f.name] = _string(value, where)
        hp = cls(**values)
        hp._check_ranges()
        return hp

    def _check_ranges(self) -> None:
        positive = {"lr": self.lr, "eps": self.eps, "gamma": self.gamma}
        unit = {"momentum": self.momentum, "beta1": self.beta1, "beta2": self.beta2,
                "dropout": self.dropout, "label_smoothing": self.label_smoothing}
        closed_unit = {"rho": self.rho, "alpha": self.alpha, "aug_crop_p": self.aug_crop_p,
                       "aug_shift_p": self.aug_shift_p, "aug_rotate_p": self.aug_rotate_p,
                       "aug_flip_p": self.aug_flip_p}
        non_negative = {"weight_decay": self.weight_decay, "mixup_alpha": self.mixup_alpha,
                        "cutmix_alpha": self.cutmix_alpha, "layers": self.layers,
                        "aug_crop_pad": self.aug_crop_pad, "aug_shift": self.aug_shift,
                        "aug_rotate_deg": self.aug_rotate_deg}
        at_least_one = {"batch_size": self.batch_size, "hidden": self.hidden,
                        "channels": self.channels, "step_size": self.step_size}
        for name, v in positive.items():
            _require(v > 0, name, v, "must be > 0")
        for name, v in unit.items():
            _require(0 <= v < 1, name, v, "must be in [0, 1)")
        for name, v in closed_unit.items():
            _require(0 <= v <= 1, name, v, "must be in [0, 1]")
        for name, v in non_negative.items():
            _require(v >= 0, name, v, "must be >= 0")
        for name, v in at_least_one.items():
            _require(v >= 1, name, v, "must be >= 1")


def _require(ok: bool, name: str, value: float, why: str) -> None:
    if not ok:
        raise TrainingConfigError(f"params.{name}: {value} {why}")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TrainingConfigError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise TrainingConfigError(f"{where}: expected an integer, got {value!r}")
    return int(value)


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise TrainingConfigError(f"{where}: expected a string, got {value!r}")
    return value


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise TrainingConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _section(config: Mapping[str, Any], key: str, where: str) -> dict[str, Any] | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TrainingConfigError(f"{where}: expected a mapping, got {value!r}")
    return {k: v for k, v in value.items() if v is not None}


@dataclass(frozen=True)
class ValidationSpec:
    """A holdout split (``fraction``) or, with ``k_folds``, K-fold cross-validation."""

    fraction: float = DEFAULT_VALIDATION_FRACTION
    stratify: bool = True
    seed: int = 0
    k_folds: int | None = None

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> ValidationSpec:
        raw = raw or {}
        where = "objective.validation"
        if "k_folds" in raw and "fraction" in raw:
            raise TrainingConfigError(f"{where}: give fraction or k_folds, not both")
        k = _integer(raw["k_folds"], f"{where}.k_folds") if "k_folds" in raw else None
        return cls(
            fraction=_number(raw.get("fraction", cls.fraction), f"{where}.fraction"),
            stratify=_boolean(raw.get("stratify", cls.stratify), f"{where}.stratify"),
            seed=_integer(raw.get("seed", cls.seed), f"{where}.seed"),
            k_folds=k,
        )


@dataclass(frozen=True)
class EarlyStoppingSpec:
    monitor: str = DEFAULT_MONITOR
    mode: str = "auto"
    patience: int = DEFAULT_PATIENCE
    min_delta: float = 0.0
    restore_best_weights: bool = True

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> EarlyStoppingSpec:
        """``restore_best`` (the study spec's name) or ``restore_best_weights`` (Keras's)."""
        w = "early_stopping"
        restore = raw.get("restore_best", raw.get("restore_best_weights", True))
        return cls(
            monitor=_string(raw.get("monitor", cls.monitor), f"{w}.monitor"),
            mode=_string(raw.get("mode", cls.mode), f"{w}.mode"),
            patience=_integer(raw.get("patience", cls.patience), f"{w}.patience"),
            min_delta=_number(raw.get("min_delta", cls.min_delta), f"{w}.min_delta"),
            restore_best_weights=_boolean(restore, f"{w}.restore_best"),
        )


@dataclass(frozen=True)
class CheckpointSpec:
    keep: tuple[str, ...] = ("latest",)
    monitor: str = DEFAULT_MONITOR
    mode: str = "auto"

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> CheckpointSpec:
        raw = raw or {}
        w = "callbacks.checkpoint"
        keep = raw.get("keep", cls.keep)
        if isinstance(keep, str) or not isinstance(keep, list | tuple):
            raise TrainingConfigError(f"{w}.keep: expected a list, got {keep!r}")
        return cls(
            keep=tuple(_string(k, f"{w}.keep") for k in keep),
            monitor=_string(raw.get("monitor", cls.monitor), f"{w}.monitor"),
            mode=_string(raw.get("mode", cls.mode), f"{w}.mode"),
        )


@dataclass(frozen=True)
class ScheduleSpec:
    """``type`` and ``warmup_epochs``; ``options`` holds the rest of the section."""

    type: str = "constant"
    warmup_epochs: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | None) -> ScheduleSpec:
        raw = dict(raw or {})
        w = "callbacks.lr_schedule"
        return cls(
            type=_string(raw.pop("type", cls.type), f"{w}.type"),
            warmup_epochs=_integer(raw.pop("warmup_epochs", 0), f"{w}.warmup_epochs"),
            options=raw,
        )


@dataclass(frozen=True)
class TrainerConfig:
    """Everything :func:`workers.training.train` reads from a :class:`TrialContext`.

    From ``ctx.config["objective"]``: dataset, dataset_options, target, task, model, metric
    (a name or a list), direction (or directions), max_epochs, validation, lr_scaling (also
    accepted at the top level of ``ctx.config``). From ``ctx.config``: early_stopping and
    callbacks (terminate_on_nan, checkpoint, lr_schedule). From ``ctx.params``:
    :class:`HyperParams`.
    """

    dataset: str
    model: str = "mlp"
    metric: str = "val_loss"
    direction: Mode = "min"
    metrics: tuple[str, ...] = ("val_loss",)
    max_epochs: int = DEFAULT_MAX_EPOCHS
    dataset_options: dict[str, Any] = field(default_factory=dict)
    target: str = "target"
    task: Task | None = None
    validation: ValidationSpec = field(default_factory=ValidationSpec)
    lr_scaling: tuple[str, int] | None = None
    early_stopping: EarlyStoppingSpec | None = None
    terminate_on_nan: bool = True
    checkpoint: CheckpointSpec = field(default_factory=CheckpointSpec)
    lr_schedule: ScheduleSpec = field(default_factory=ScheduleSpec)
    hyper: HyperParams = field(default_factory=HyperParams)

    @classmethod
    def from_context(cls, ctx: TrialContext) -> TrainerConfig:
        objective = _section(ctx.config, "objective", "objective") or {}
        if "dataset" not in objective:
            raise TrainingConfigError("objective.dataset: required")
        w = "objective"
        metrics = _metrics(objective.get("metric", cls.metric))
        directions = objective.get("direction", objective.get("directions"))
        direction = directions[0] if isinstance(directions, list) and directions else directions
        task = objective.get("task")
        if task not in (None, "classification", "regression"):
            raise TrainingConfigError(
                f"{w}.task: unknown {task!r}; expected classification or regression"
            )
        max_epochs = _integer(objective.get("max_epochs", DEFAULT_MAX_EPOCHS), f"{w}.max_epochs")
        if max_epochs < 1:
            raise TrainingConfigError(f"{w}.max_epochs: {max_epochs} is less than 1")
        callbacks = _section(ctx.config, "callbacks", "callbacks") or {}
        raw_callbacks = ctx.config.get("callbacks") or {}
        checkpoint_off = "checkpoint" in raw_callbacks and raw_callbacks["checkpoint"] is None
        early = _section(ctx.config, "early_stopping", "early_stopping")
        return cls(
            dataset=_string(objective["dataset"], f"{w}.dataset"),
            model=_string(objective.get("model", cls.model), f"{w}.model"),
            metric=metrics[0],
            direction=_direction(direction, metrics[0]),
            metrics=metrics,
            max_epochs=max_epochs,
            dataset_options=_section(objective, "dataset_options", f"{w}.dataset_options") or {},
            target=_string(objective.get("target", cls.target), f"{w}.target"),
            task=task,
            validation=ValidationSpec.parse(_section(objective, "validation", f"{w}.validation")),
            lr_scaling=_lr_scaling(
                _section(objective, "lr_scaling", f"{w}.lr_scaling")
                or _section(ctx.config, "lr_scaling", "lr_scaling")
            ),
            early_stopping=EarlyStoppingSpec.parse(early) if early is not None else None,
            terminate_on_nan=_boolean(
                callbacks.get("terminate_on_nan", True), "callbacks.terminate_on_nan"
            ),
            checkpoint=CheckpointSpec(keep=())
            if checkpoint_off
            else CheckpointSpec.parse(_section(callbacks, "checkpoint", "callbacks.checkpoint")),
            lr_schedule=ScheduleSpec.parse(
                _section(callbacks, "lr_schedule", "callbacks.lr_schedule")
            ),
            hyper=HyperParams.from_params(
                {k: v for k, v in ctx.params.items() if v is not None}
            ),
        )


def _metrics(raw: Any) -> tuple[str, ...]:
    """One metric, or several for a multi-objective study (the first drives the gap)."""
    names = raw if isinstance(raw, list) else [raw]
    if not names:
        raise TrainingConfigError("objective.metric: empty")
    return tuple(_string(name, "objective.metric") for name in names)


def _direction(raw: Any, metric: str) -> Mode:
    if raw is None:
        return metric_mode(metric)
    aliases: dict[str, Mode] = {"minimize": "min", "min": "min", "maximize": "max", "max": "max"}
    if raw not in aliases:
        raise TrainingConfigError(
            f"objective.direction: unknown {raw!r}; expected maximize or minimize"
        )
    return aliases[raw]


def _lr_scaling(raw: Mapping[str, Any] | None) -> tuple[str, int] | None:
    if not raw or raw.get("rule") in (None, "none"):
        return None
    rule = _string(raw["rule"], "lr_scaling.rule")
    if "base_batch_size" not in raw:
        raise TrainingConfigError("lr_scaling.base_batch_size: required with a rule")
    return rule, _integer(raw["base_batch_size"], "lr_scaling.base_batch_size")
