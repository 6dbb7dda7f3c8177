"""Per-epoch metrics, as plain functions of numpy arrays.

Classification metrics take integer labels and class probabilities ``(n, n_classes)``;
regression metrics take targets and predictions in the target's own units. None of them raises
on degenerate input (one class, NaN outputs): a diverged model must still produce logs that
:class:`~workers.training.callbacks.TerminateOnNaN` can judge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

from workers.training.errors import TrainingConfigError

__all__ = [
    "CLASSIFICATION_METRICS",
    "HIGHER_IS_BETTER",
    "REGRESSION_METRICS",
    "BestTracker",
    "Mode",
    "base_metric",
    "generalization_gap",
    "metric_mode",
    "resolve_mode",
]

Mode = Literal["min", "max"]
ClassificationMetric = Callable[[NDArray[np.int64], NDArray[np.float32]], float]
RegressionMetric = Callable[[NDArray[np.float32], NDArray[np.float32]], float]


def accuracy(y: NDArray[np.int64], proba: NDArray[np.float32]) -> float:
    return float(np.mean(proba.argmax(axis=1) == y))


def f1_macro(y: NDArray[np.int64], proba: NDArray[np.float32]) -> float:
    """Macro F1 over the classes present in the labels or the predictions (sklearn's rule)."""
    pred = proba.argmax(axis=1)
    n_classes = proba.shape[1]
    tp = np.bincount(y[pred == y], minlength=n_classes).astype(np.float64)
    predicted = np.bincount(pred, minlength=n_classes).astype(np.float64)
    actual = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = (predicted + actual) > 0
    denominator = predicted + actual
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return float(f1[present].mean())


def _auc_from_ranks(positive: NDArray[np.bool_], ranks: NDArray[np.float64]) -> float:
    """Mann-Whitney U over the positives' ranks (ties averaged): the exact ROC AUC."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_auc(y: NDArray[np.int64], proba: NDArray[np.float32]) -> float:
    """ROC AUC; one-vs-rest macro average for more than two classes.

    Classes absent from ``y`` (or present alone) have no AUC and are left out of the
    average; with fewer than two classes present the AUC is undefined and 0.5 (chance) is
    returned rather than an exception. Non-finite probabilities give NaN.
    """
    scores = proba.astype(np.float64)
    if not np.isfinite(scores).all():
        return math.nan
    if scores.shape[1] == 2:
        positive = y == 1
        if positive.all() or not positive.any():
            return 0.5
        return _auc_from_ranks(positive, rankdata(scores[:, 1]))
    ranks = rankdata(scores, axis=0)
    aucs = [
        _auc_from_ranks(y == c, ranks[:, c])
        for c in range(scores.shape[1])
        if 0 < int((y == c).sum()) < y.size
    ]
    return float(np.mean(aucs)) if aucs else 0.5


def mse(y: NDArray[np.float32], pred: NDArray[np.float32]) -> float:
    return float(np.mean((pred.astype(np.float64) - y) ** 2))


def mae(y: NDArray[np.float32], pred: NDArray[np.float32]) -> float:
    return float(np.mean(np.abs(pred.astype(np.float64) - y)))


def r2(y: NDArray[np.float32], pred: NDArray[np.float32]) -> float:
    """Coefficient of determination; a constant target gives 1.0 if perfect else 0.0 (sklearn)."""
    y64 = y.astype(np.float64)
    ss_res = float(np.sum((y64 - pred) ** 2))
    ss_tot = float(np.sum((y64 - y64.mean()) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


CLASSIFICATION_METRICS: Mapping[str, ClassificationMetric] = {
    "accuracy": accuracy,
    "f1": f1_macro,
    "auc": roc_auc,
}
REGRESSION_METRICS: Mapping[str, RegressionMetric] = {"mse": mse, "mae": mae, "r2": r2}
HIGHER_IS_BETTER: frozenset[str] = frozenset({"accuracy", "f1", "auc", "r2"})


def base_metric(name: str) -> str:
    """``val_accuracy_std`` -> ``accuracy``; ``train_loss`` -> ``loss``; others unchanged."""
    name = name.removesuffix("_std")
    for prefix in ("train_", "val_"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def metric_mode(name: str) -> Mode:
    """Whether a reported metric improves downwards or upwards (what ``mode: auto`` means)."""
    if name.endswith("_std"):
        return "min"
    return "max" if base_metric(name) in HIGHER_IS_BETTER else "min"


def resolve_mode(mode: str, monitor: str, field: str) -> Mode:
    """``min``/``max`` as given; ``auto`` from the monitored metric's name."""
    if mode == "auto":
        return metric_mode(monitor)
    if mode == "min":
        return "min"
    if mode == "max":
        return "max"
    raise TrainingConfigError(f"{field}: unknown mode {mode!r}; expected min, max or auto")


def generalization_gap(logs: Mapping[str, float], metric: str) -> float:
    """Train minus validation value of ``metric``'s base, signed so that larger means overfitting.

    A metric with no train/validation pair (``lr``, ``epoch_time_s``...) falls back to the loss.
    """
    m = base_metric(metric)
    if f"train_{m}" not in logs or f"val_{m}" not in logs:
        m = "loss"
    train, val = logs[f"train_{m}"], logs[f"val_{m}"]
    return train - val if m in HIGHER_IS_BETTER else val - train


class BestTracker:
    """The best value of a monitored metric so far, as early stopping and checkpoints see it.

    A value improves on the best when it is better by more than ``min_delta``; NaN never does.
    """

    def __init__(
        self, monitor: str, mode: str = "auto", min_delta: float = 0.0, *, field: str
    ) -> None:
        self.monitor = monitor
        self.mode: Mode = resolve_mode(mode, monitor, field)
        self.min_delta = abs(min_delta)
        self.best: float | None = None
        self.best_epoch = 0

    def value(self, logs: Mapping[str, float]) -> float:
        if self.monitor not in logs:
            raise TrainingConfigError(
                f"monitor {self.monitor!r} is not reported; reported: {', '.join(sorted(logs))}"
            )
        return logs[self.monitor]

    def improves(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, epoch: int, logs: Mapping[str, float]) -> bool:
        """Record ``logs`` of ``epoch``; true when it is the new best."""
        value = self.value(logs)
        if not self.improves(value):
            return False
        self.best, self.best_epoch = value, epoch
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], int(state["best_epoch"])
