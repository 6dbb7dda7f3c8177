"""A small epoch loop that knows nothing of the service: everything else is a callback.

The loop drives a :class:`Learner` (what trains and evaluates, one model or several folds) and
calls each :class:`Callback`'s hooks in order, Keras style. Its whole state (epoch, history,
learner, callbacks, global RNG) round-trips through :meth:`Loop.state_dict`, which is what a
checkpoint holds and what makes a resumed run continue exactly where the saved one was.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import torch

__all__ = ["Callback", "Learner", "Logs", "Loop"]

Logs = dict[str, float]


class Learner(Protocol):
    """What the loop trains: one model on one split, or several folds behind one face."""

    @property
    def lr(self) -> float: ...

    @lr.setter
    def lr(self, value: float) -> None: ...

    def train_epoch(self, epoch: int) -> None:
        """One pass over the training data."""

    def evaluate(self) -> Logs:
        """Train and validation metrics of the current weights, in eval mode, without grad."""

    def weights(self) -> Any:
        """A detached copy of the model weights (what restore-best keeps)."""

    def load_weights(self, weights: Any) -> None: ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training exactly: weights, optimiser, RNGs."""

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


class Callback:
    """Hooks around the loop; override what you need. ``self.loop`` is set by the loop.

    A callback whose decisions depend on past epochs returns that memory from
    :meth:`state_dict` so that a resumed run decides the same way.
    """

    loop: Loop

    @property
    def state_key(self) -> str:
        return type(self).__name__

    def set_loop(self, loop: Loop) -> None:
        self.loop = loop

    def on_train_begin(self) -> None:
        pass

    def on_epoch_begin(self, epoch: int) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        pass

    def on_train_end(self) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


class Loop:
    """Runs epochs ``1..max_epochs`` until done or a callback sets ``stop_training``.

    Each epoch: ``on_epoch_begin`` hooks, ``learner.train_epoch``, ``learner.evaluate`` plus
    ``lr`` (the rate the epoch trained with) and ``epoch_time_s``, then ``on_epoch_end`` hooks
    in the order given. Exceptions from hooks (divergence, pruning) propagate untouched.
    """

    def __init__(
        self, learner: Learner, callbacks: Sequence[Callback] = (), *, max_epochs: int
    ) -> None:
        if max_epochs < 1:
            raise ValueError(f"max_epochs must be at least 1, got {max_epochs}")
        self.learner = learner
        self.callbacks = list(callbacks)
        self.max_epochs = max_epochs
        self.epoch = 0
        self.history: list[Logs] = []
        self.stop_training = False
        keys = [cb.state_key for cb in self.callbacks]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"callbacks share a state_key: {', '.join(duplicates)}")
        for cb in self.callbacks:
            cb.set_loop(self)

    def fit(self) -> list[Logs]:
        for cb in self.callbacks:
            cb.on_train_begin()
        while not self.stop_training and self.epoch < self.max_epochs:
            epoch = self.epoch + 1
            for cb in self.callbacks:
                cb.on_epoch_begin(epoch)
            started = time.perf_counter()
            self.learner.train_epoch(epoch)
            logs = self.learner.evaluate()
            logs["lr"] = self.learner.lr
            logs["epoch_time_s"] = time.perf_counter() - started
            self.epoch = epoch
            self.history.append(logs)
            for cb in self.callbacks:
                cb.on_epoch_end(epoch, logs)
        for cb in self.callbacks:
            cb.on_train_end()
        return self.history

    def state_dict(self) -> dict[str, Any]:
        rng: dict[str, Any] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "epoch": self.epoch,
            "stop_training": self.stop_training,
            "history": [dict(logs) for logs in self.history],
            "learner": self.learner.state_dict(),
            "callbacks": {cb.state_key: cb.state_dict() for cb in self.callbacks},
            "rng": rng,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.stop_training = bool(state["stop_training"])
        self.history = [dict(logs) for logs in state["history"]]
        self.learner.load_state_dict(state["learner"])
        saved = state["callbacks"]
        for cb in self.callbacks:
            if cb.state_key in saved:
                cb.load_state_dict(saved[cb.state_key])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
