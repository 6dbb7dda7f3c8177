"""The trainer's exceptions; the worker turns any of them into a failed trial with ``str(exc)``."""

from __future__ import annotations

__all__ = ["TrainingConfigError", "TrainingDiverged", "TrainingError"]


class TrainingError(Exception):
    """Base class of everything the built-in trainer raises on purpose."""


class TrainingConfigError(TrainingError, ValueError):
    """The study's objective, callbacks or hyperparameters ask for something the trainer lacks."""


class TrainingDiverged(TrainingError):
    """A monitored value became NaN or infinite, e.g. ``train_loss is nan at epoch 3``."""
