"""The loop and its callbacks on a scripted learner whose validation loss is given."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from tuneboard.artifacts import LocalStore
from workers.training import (
    Callback,
    EarlyStopping,
    LearningRateScheduler,
    Logs,
    Loop,
    ModelCheckpoint,
    StopOnRequest,
    TerminateOnNaN,
    TrainingDiverged,
    load_checkpoint,
)
from workers.training.schedules import ReduceOnPlateau


class ScriptedLearner:
    """Reports ``val_losses[epoch - 1]``; its "weights" are the epoch they were trained in."""

    def __init__(self, val_losses: Sequence[float]) -> None:
        self.val_losses = list(val_losses)
        self.trained = 0
        self.lr = 1.0

    def train_epoch(self, epoch: int) -> None:
        self.trained = epoch

    def evaluate(self) -> Logs:
        loss = self.val_losses[self.trained - 1]
        return {"train_loss": loss, "val_loss": loss, "val_accuracy": 1.0 - loss}

    def weights(self) -> Any:
        return {"epoch": torch.tensor(self.trained)}

    def load_weights(self, weights: Any) -> None:
        self.trained = int(weights["epoch"])

    def state_dict(self) -> dict[str, Any]:
        return {"trained": self.trained, "lr": self.lr}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.trained, self.lr = int(state["trained"]), float(state["lr"])


def test_loop_runs_every_epoch_and_adds_lr_and_time() -> None:
    loop = Loop(ScriptedLearner([0.5, 0.4, 0.3]), max_epochs=3)
    history = loop.fit()
    assert [logs["val_loss"] for logs in history] == [0.5, 0.4, 0.3]
    assert all(logs["lr"] == 1.0 and logs["epoch_time_s"] >= 0 for logs in history)
    assert loop.epoch == 3


def test_hooks_run_in_order() -> None:
    calls: list[str] = []

    class Spy(Callback):
        def on_train_begin(self) -> None:
            calls.append("begin")

        def on_epoch_begin(self, epoch: int) -> None:
            calls.append(f"epoch{epoch}")

        def on_epoch_end(self, epoch: int, logs: Logs) -> None:
            calls.append(f"end{epoch}")

        def on_train_end(self) -> None:
            calls.append("done")

    Loop(ScriptedLearner([1.0, 1.0]), [Spy()], max_epochs=2).fit()
    assert calls == ["begin", "epoch1", "end1", "epoch2", "end2", "done"]


def test_early_stopping_waits_patience_epochs_then_restores_best() -> None:
    learner = ScriptedLearner([1.0, 0.5, 0.6, 0.55, 0.7, 0.1])
    early = EarlyStopping("val_loss", patience=3)
    loop = Loop(learner, [early], max_epochs=6)
    history = loop.fit()
    assert len(history) == 5
    assert early.stopped_epoch == 5 and early.best_epoch == 2
    assert learner.trained == 2


def test_early_stopping_min_delta_and_max_mode() -> None:
    learner = ScriptedLearner([0.5, 0.49, 0.485, 0.48, 0.2])
    early = EarlyStopping("val_accuracy", mode="auto", patience=2, min_delta=0.05)
    Loop(learner, [early], max_epochs=5).fit()
    assert early.tracker.mode == "max"
    assert early.best_epoch == 1 and early.stopped_epoch == 3


def test_early_stopping_without_restore_keeps_last_weights() -> None:
    learner = ScriptedLearner([0.1, 0.2, 0.3])
    Loop(learner, [EarlyStopping(patience=2, restore_best_weights=False)], max_epochs=3).fit()
    assert learner.trained == 3


def test_terminate_on_nan_names_the_value_and_epoch() -> None:
    loop = Loop(ScriptedLearner([0.5, 0.4, math.nan]), [TerminateOnNaN()], max_epochs=3)
    with pytest.raises(TrainingDiverged, match=r"^train_loss is nan at epoch 3$"):
        loop.fit()


def test_stop_on_request_finishes_the_current_epoch() -> None:
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) >= 2

    loop = Loop(ScriptedLearner([1.0] * 5), [StopOnRequest(should_stop)], max_epochs=5)
    assert len(loop.fit()) == 2


def test_reduce_on_plateau_cuts_the_rate_after_patience() -> None:
    schedule = ReduceOnPlateau(monitor="val_loss", factor=0.5, patience=2)
    learner = ScriptedLearner([1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5])
    history = Loop(learner, [LearningRateScheduler(schedule, 0.1)], max_epochs=7).fit()
    assert [logs["lr"] for logs in history] == pytest.approx(
        [0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025]
    )


def test_checkpoint_holds_the_whole_state_and_resumes(tmp_path: Path) -> None:
    losses = [1.0, 0.5, 0.6, 0.7, 0.8, 0.9]

    def callbacks() -> list[Callback]:
        return [
            EarlyStopping(patience=3),
            ModelCheckpoint(LocalStore(tmp_path), keep=["latest", "best"]),
        ]

    class Crash(Callback):
        def on_epoch_end(self, epoch: int, logs: Logs) -> None:
            if epoch == 3:
                raise RuntimeError("worker lost")

    first = Loop(ScriptedLearner(losses), [*callbacks(), Crash()], max_epochs=6)
    with pytest.raises(RuntimeError):
        first.fit()
    latest = load_checkpoint(tmp_path / "latest.pt")
    assert latest["epoch"] == 3
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == 2

    learner = ScriptedLearner(losses)
    resumed = Loop(learner, callbacks(), max_epochs=6)
    resumed.load_state_dict(latest)
    history = resumed.fit()
    assert len(history) == 5, "early stopping kept counting from the saved state"
    assert learner.trained == 2


def test_a_finished_run_resumes_to_nothing(tmp_path: Path) -> None:
    callbacks = [EarlyStopping(patience=1), ModelCheckpoint(LocalStore(tmp_path))]
    loop = Loop(ScriptedLearner([1.0, 2.0]), callbacks, max_epochs=5)
    loop.fit()
    again = Loop(ScriptedLearner([1.0, 2.0]), [EarlyStopping(patience=1)], max_epochs=5)
    again.load_state_dict(load_checkpoint(tmp_path / "latest.pt"))
    assert len(again.fit()) == 2


def test_duplicate_callbacks_are_refused() -> None:
    with pytest.raises(ValueError, match="TerminateOnNaN"):
        Loop(ScriptedLearner([1.0]), [TerminateOnNaN(), TerminateOnNaN()], max_epochs=1)
