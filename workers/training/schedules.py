"""Learning-rate schedules, per epoch, as multipliers of the base learning rate.

Epochs count from 1. A schedule gives the factor for an epoch before it trains
(:meth:`Schedule.factor`) and may learn from its logs afterwards (:meth:`Schedule.step`, used by
reduce-on-plateau). :class:`Warmup` wraps any schedule: over ``warmup_epochs`` epochs the factor
rises linearly, ``e / (warmup_epochs + 1)``, then the wrapped schedule runs with its own epoch 1
on the first epoch after the warm-up.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

from workers.training.config import HyperParams
from workers.training.errors import TrainingConfigError
from workers.training.metrics import BestTracker

__all__ = [
    "SCHEDULES",
    "Constant",
    "Cosine",
    "InverseSqrt",
    "Linear",
    "ReduceOnPlateau",
    "Schedule",
    "Step",
    "Warmup",
    "build_schedule",
]


class Schedule(ABC):
    @abstractmethod
    def factor(self, epoch: int) -> float:
        """Multiplier of the base learning rate for ``epoch`` (1-based)."""

    def step(self, epoch: int, logs: Mapping[str, float]) -> None:  # noqa: B027
        """Called with each finished epoch's logs."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:  # noqa: B027
        pass


class Constant(Schedule):
    def factor(self, epoch: int) -> float:
        return 1.0


class Step(Schedule):
    """Multiply by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, step_size: int, gamma: float) -> None:
        if step_size < 1:
            raise TrainingConfigError("params.step_size: must be at least 1")
        self.step_size, self.gamma = step_size, gamma

    def factor(self, epoch: int) -> float:
        return float(self.gamma ** ((epoch - 1) // self.step_size))


class Cosine(Schedule):
    """Half a cosine from 1 at epoch 1 towards ``floor`` after ``total_epochs``."""

    def __init__(self, total_epochs: int, floor: float = 0.0) -> None:
        self.total, self.floor = max(1, total_epochs), floor

    def factor(self, epoch: int) -> float:
        cosine = 0.5 * (1.0 + math.cos(math.pi * (epoch - 1) / self.total))
        return self.floor + (1.0 - self.floor) * cosine


class Linear(Schedule):
    """Straight line from 1 at epoch 1 towards ``floor`` after ``total_epochs``."""

    def __init__(self, total_epochs: int, floor: float = 0.0) -> None:
        self.total, self.floor = max(1, total_epochs), floor

    def factor(self, epoch: int) -> float:
        return self.floor + (1.0 - self.floor) * (1.0 - (epoch - 1) / self.total)


class InverseSqrt(Schedule):
    """``1 / sqrt(epoch)`` (Vaswani et al. 2017, per epoch; usually after a warm-up)."""

    def factor(self, epoch: int) -> float:
        return 1.0 / math.sqrt(epoch)


class ReduceOnPlateau(Schedule):
    """Multiply by ``factor`` once ``monitor`` has not improved by ``min_delta`` for ``patience``
    epochs, then wait ``cooldown`` epochs; never below ``min_factor`` (of the base rate)."""

    def __init__(
        self,
        *,
        monitor: str = "val_loss",
        mode: str = "auto",
        factor: float = 0.1,
        patience: int = 5,
        min_delta: float = 0.0,
        cooldown: int = 0,
        min_factor: float = 0.0,
    ) -> None:
        if not 0.0 < factor < 1.0:
            raise TrainingConfigError(f"callbacks.lr_schedule.factor: {factor} is not in (0, 1)")
        if patience < 0 or cooldown < 0:
            raise TrainingConfigError("callbacks.lr_schedule: patience and cooldown must be >= 0")
        self.tracker = BestTracker(monitor, mode, min_delta, field="callbacks.lr_schedule.mode")
        self.reduce_by, self.patience = factor, patience
        self.cooldown, self.min_factor = cooldown, min_factor
        self.current = 1.0
        self.wait = 0
        self.cooling = 0

    def factor(self, epoch: int) -> float:
        return self.current

    def step(self, epoch: int, logs: Mapping[str, float]) -> None:
        if self.cooling > 0:
            self.cooling -= 1
        if self.tracker.update(epoch, logs):
            self.wait = 0
            return
        if self.cooling > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.current = max(self.current * self.reduce_by, self.min_factor)
            self.wait, self.cooling = 0, self.cooldown

    def state_dict(self) -> dict[str, Any]:
        return {
            "tracker": self.tracker.state_dict(),
            "current": self.current,
            "wait": self.wait,
            "cooling": self.cooling,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.tracker.load_state_dict(state["tracker"])
        self.current, self.wait, self.cooling = state["current"], state["wait"], state["cooling"]


class Warmup(Schedule):
    def __init__(self, inner: Schedule, warmup_epochs: int) -> None:
        if warmup_epochs < 0:
            raise TrainingConfigError("callbacks.lr_schedule.warmup_epochs: must be >= 0")
        self.inner, self.warmup_epochs = inner, warmup_epochs

    def factor(self, epoch: int) -> float:
        if epoch <= self.warmup_epochs:
            return epoch / (self.warmup_epochs + 1)
        return self.inner.factor(epoch - self.warmup_epochs)

    def step(self, epoch: int, logs: Mapping[str, float]) -> None:
        if epoch > self.warmup_epochs:
            self.inner.step(epoch - self.warmup_epochs, logs)

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.inner.load_state_dict(state)


def _floor(options: Mapping[str, Any], base_lr: float) -> float:
    """``min_lr`` as a fraction of the base rate."""
    min_lr = float(options.get("min_lr", 0.0))
    if min_lr < 0:
        raise TrainingConfigError(f"callbacks.lr_schedule.min_lr: {min_lr} is negative")
    return min(1.0, min_lr / base_lr)


def _plateau(options: Mapping[str, Any], total: int, base_lr: float) -> Schedule:
    return ReduceOnPlateau(
        monitor=str(options.get("monitor", "val_loss")),
        mode=str(options.get("mode", "auto")),
        factor=float(options.get("factor", 0.1)),
        patience=int(options.get("patience", 5)),
        min_delta=float(options.get("min_delta", 0.0)),
        cooldown=int(options.get("cooldown", 0)),
        min_factor=_floor(options, base_lr),
    )


def _step(options: Mapping[str, Any], total: int, base_lr: float) -> Schedule:
    defaults = HyperParams()
    return Step(
        int(options.get("step_size", defaults.step_size)),
        float(options.get("gamma", defaults.gamma)),
    )


ScheduleFactory = Callable[[Mapping[str, Any], int, float], Schedule]
SCHEDULES: Mapping[str, ScheduleFactory] = {
    "constant": lambda options, total, base_lr: Constant(),
    "step": _step,
    "cosine": lambda options, total, base_lr: Cosine(total, _floor(options, base_lr)),
    "linear": lambda options, total, base_lr: Linear(total, _floor(options, base_lr)),
    "inverse_sqrt": lambda options, total, base_lr: InverseSqrt(),
    "reduce_on_plateau": _plateau,
}
SCHEDULE_OPTIONS: Mapping[str, frozenset[str]] = {
    "constant": frozenset(),
    "step": frozenset({"step_size", "gamma"}),
    "cosine": frozenset({"min_lr"}),
    "linear": frozenset({"min_lr"}),
    "inverse_sqrt": frozenset(),
    "reduce_on_plateau": frozenset(
        {"monitor", "mode", "factor", "patience", "min_delta", "cooldown", "min_lr"}
    ),
}


def build_schedule(
    name: str,
    options: Mapping[str, Any],
    *,
    max_epochs: int,
    warmup_epochs: int = 0,
    base_lr: float = 1.0,
) -> Schedule:
    """The named schedule over ``max_epochs`` epochs, after ``warmup_epochs`` of warm-up.

    Options: step: step_size, gamma; cosine and linear: min_lr (the rate they decay towards);
    reduce_on_plateau: monitor, mode, factor, patience, min_delta, cooldown, min_lr. ``min_lr``
    is absolute, so the schedule needs ``base_lr``. Options the schedule does not take
    (another schedule's, or unset ones) are ignored.
    """
    if name not in SCHEDULES:
        raise TrainingConfigError(
            f"callbacks.lr_schedule.type: unknown schedule {name!r}; "
            f"expected one of {', '.join(SCHEDULES)}"
        )
    options = {k: v for k, v in options.items() if k in SCHEDULE_OPTIONS[name] and v is not None}
    inner = SCHEDULES[name](options, max_epochs - warmup_epochs, base_lr)
    return Warmup(inner, warmup_epochs) if warmup_epochs else inner
