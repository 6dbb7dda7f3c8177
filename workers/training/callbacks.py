"""The callbacks the built-in trainer composes its behaviour from.

Order matters and :func:`workers.training.train` uses this one: TerminateOnNaN (never report
or save a diverged epoch), EarlyStopping and LearningRateScheduler (update their memory),
MetricReporter (the report may raise ``TrialPruned``), ModelCheckpoint (saves what the others
decided, so a resumed run decides the same), StopOnRequest.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch

from tuneboard.artifacts import ArtifactStore
from tuneboard.objective import LATEST_CHECKPOINT
from workers.training.errors import TrainingConfigError, TrainingDiverged
from workers.training.loop import Callback, Logs
from workers.training.metrics import BestTracker
from workers.training.schedules import Schedule

__all__ = [
    "CHECKPOINT_KINDS",
    "EarlyStopping",
    "LearningRateScheduler",
    "MetricReporter",
    "ModelCheckpoint",
    "StopOnRequest",
    "TerminateOnNaN",
    "dump_checkpoint",
    "load_checkpoint",
]

CHECKPOINT_KINDS: tuple[str, ...] = ("latest", "best")
BEST_CHECKPOINT = "best.pt"


class TerminateOnNaN(Callback):
    """Raise :class:`TrainingDiverged` when a monitored value is NaN or infinite."""

    def __init__(self, monitors: Iterable[str] = ("train_loss", "val_loss")) -> None:
        self.monitors = tuple(monitors)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        for name in self.monitors:
            value = logs.get(name)
            if value is not None and not math.isfinite(value):
                raise TrainingDiverged(f"{name} is {value} at epoch {epoch}")


class EarlyStopping(Callback):
    """Stop once ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    With ``restore_best_weights`` the learner ends on the weights of the best epoch (also when
    training ends for another reason), and :attr:`best_epoch` names it.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str = "auto",
        patience: int = 5,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
    ) -> None:
        if patience < 0:
            raise TrainingConfigError(f"early_stopping.patience: {patience} is negative")
        self.tracker = BestTracker(monitor, mode, min_delta, field="early_stopping.mode")
        self.patience = patience
        self.restore_best_weights = restore_best_weights
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights: Any = None

    @property
    def best_epoch(self) -> int:
        return self.tracker.best_epoch

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if self.tracker.update(epoch, logs):
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = self.loop.learner.weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.loop.stop_training = True

    def on_train_end(self) -> None:
        restore = self.restore_best_weights and self.best_weights is not None
        if restore and self.best_epoch != self.loop.epoch:
            self.loop.learner.load_weights(self.best_weights)

    def state_dict(self) -> dict[str, Any]:
        return {
            "tracker": self.tracker.state_dict(),
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best_weights": self.best_weights,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.tracker.load_state_dict(state["tracker"])
        self.wait, self.stopped_epoch = int(state["wait"]), int(state["stopped_epoch"])
        self.best_weights = state["best_weights"]


class LearningRateScheduler(Callback):
    """Set the learner's rate to ``base_lr * schedule.factor(epoch)`` before each epoch."""

    def __init__(self, schedule: Schedule, base_lr: float) -> None:
        self.schedule = schedule
        self.base_lr = base_lr

    def on_epoch_begin(self, epoch: int) -> None:
        self.loop.learner.lr = self.base_lr * self.schedule.factor(epoch)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        self.schedule.step(epoch, logs)

    def state_dict(self) -> dict[str, Any]:
        return self.schedule.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.schedule.load_state_dict(state)


class ReportFn(Protocol):
    def __call__(self, step: int, **metrics: float) -> None: ...


class MetricReporter(Callback):
    """Hand each epoch's logs to ``report(epoch, **logs)`` (``TrialContext.report``); whatever
    it raises, ``TrialPruned`` included, propagates."""

    def __init__(self, report: ReportFn) -> None:
        self.report = report

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        self.report(epoch, **logs)


class StopOnRequest(Callback):
    """Stop after the current epoch once ``should_stop()`` is true (cancelled, out of time)."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self.should_stop = should_stop

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if self.should_stop():
            self.loop.stop_training = True


def dump_checkpoint(state: Mapping[str, Any]) -> bytes:
    """The loop's state as one object, the bytes a store keeps."""
    buffer = io.BytesIO()
    torch.save(dict(state), buffer)
    return buffer.getvalue()


def load_checkpoint(source: Path | bytes) -> dict[str, Any]:
    """A checkpoint written by :class:`ModelCheckpoint` (a file or its bytes), tensors on the
    CPU. ``weights_only``: a checkpoint from a shared store is data, never code to unpickle."""
    data = source if isinstance(source, bytes) else source.read_bytes()
    state: dict[str, Any] = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    return state


class ModelCheckpoint(Callback):
    """Save the loop's whole state after each epoch (``latest.pt``) and on each new best of
    ``monitor`` (``best.pt``) in ``store``; ``latest.pt`` is what a retry resumes from, on
    whichever host it runs when the store is shared."""

    def __init__(
        self,
        store: ArtifactStore,
        keep: Iterable[str] = ("latest",),
        monitor: str = "val_loss",
        mode: str = "auto",
    ) -> None:
        self.keep = frozenset(keep)
        unknown = sorted(self.keep - set(CHECKPOINT_KINDS))
        if unknown:
            raise TrainingConfigError(
                f"callbacks.checkpoint.keep: unknown {', '.join(unknown)}; "
                f"expected some of {', '.join(CHECKPOINT_KINDS)}"
            )
        self.store = store
        self.tracker = BestTracker(monitor, mode, field="callbacks.checkpoint.mode")

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        save_best = self.tracker.update(epoch, logs) and "best" in self.keep
        save_latest = "latest" in self.keep
        if not (save_best or save_latest):
            return
        data = dump_checkpoint(self.loop.state_dict())
        if save_best:
            self.store.save(BEST_CHECKPOINT, data)
        if save_latest:
            self.store.save(LATEST_CHECKPOINT, data)

    def state_dict(self) -> dict[str, Any]:
        return {"tracker": self.tracker.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.tracker.load_state_dict(state["tracker"])
