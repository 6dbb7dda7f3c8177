"""Names the study spec accepts for the built-in trainer.

The API validates specs against these lists without importing torch or ``workers``; the
trainer in ``workers/training`` implements exactly these (a test checks they agree). The
trainer's parameters and their defaults are :class:`tuneboard.spec.trainer.TrainerParams`.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

BUNDLED_DATASETS: dict[str, str] = {
    "digits": "classification",  # 8x8 images, 10 classes
    "wine": "classification",
    "breast_cancer": "classification",
    "iris": "classification",
    "synthetic": "classification",  # generated; options via objective.dataset_options
    "synthetic_regression": "regression",
    "diabetes": "regression",
}
IMAGE_DATASETS: frozenset[str] = frozenset({"digits"})
DATASET_FILE_SUFFIXES: tuple[str, ...] = (".csv", ".npz", ".parquet")

MODELS: tuple[str, ...] = ("mlp", "cnn")  # cnn only for image-shaped data
OPTIMIZERS: tuple[str, ...] = (
    "sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw",
)
LR_SCHEDULES: tuple[str, ...] = (
    "constant", "step", "cosine", "linear", "inverse_sqrt", "reduce_on_plateau",
)
CLASSIFICATION_METRICS: tuple[str, ...] = ("accuracy", "f1", "auc")
REGRESSION_METRICS: tuple[str, ...] = ("mse", "mae", "r2")
SAMPLERS: tuple[str, ...] = ("random", "grid", "tpe", "cmaes", "gp", "qmc", "nsga2")
PRUNERS: tuple[str, ...] = (
    "none", "median", "percentile", "successive_halving", "hyperband", "threshold",
    "patience", "wilcoxon",
)


# Reported once per epoch whatever the folds: no spread across k folds.
UNSPREAD_METRICS: frozenset[str] = frozenset({"lr", "epoch_time_s"})


def reported_metric_names(task: str, *, cross_validated: bool = False) -> frozenset[str]:
    """Every per-epoch metric name the built-in trainer reports for a task; with k folds, also
    ``<name>_std``, the spread across folds."""
    base = {"train_loss", "val_loss", "lr", "epoch_time_s", "generalization_gap"}
    ms = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    for m in ms:
        base |= {f"train_{m}", f"val_{m}"}
    if cross_validated:
        base |= {f"{name}_std" for name in base - UNSPREAD_METRICS}
    return frozenset(base)


NORMS: tuple[str, ...] = ("none", "batch", "layer")
ACTIVATIONS: tuple[str, ...] = ("relu", "gelu", "tanh", "silu")

# Trainer parameters that take one of a fixed set of names.
PARAM_CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": OPTIMIZERS,
    "norm": NORMS,
    "activation": ACTIVATIONS,
}
# Trainer parameters that must be whole numbers; every other parameter without choices is a float.
INTEGER_PARAMS: frozenset[str] = frozenset(
    {"batch_size", "hidden", "layers", "channels", "step_size", "aug_crop_pad", "aug_shift"}
)
# Image augmentation of training batches (image-shaped data only): maxima and probabilities.
IMAGE_AUGMENTATION_PARAMS: tuple[str, ...] = (
    "aug_crop_pad", "aug_crop_p", "aug_shift", "aug_shift_p", "aug_rotate_deg", "aug_rotate_p",
    "aug_flip_p",
)


class Bounds(NamedTuple):
    """The valid values of a numeric trainer parameter; ``None`` is unbounded."""

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True

    def contains(self, value: float) -> bool:
        above_low = (
            self.low is None or value > self.low or (value == self.low and self.low_inclusive)
        )
        below_high = (
            self.high is None or value < self.high or (value == self.high and self.high_inclusive)
        )
        return above_low and below_high

    def describe(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'at least' if self.low_inclusive else 'greater than'} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'at most' if self.high_inclusive else 'less than'} {self.high:g}")
        return " and ".join(parts)


PARAM_BOUNDS: dict[str, Bounds] = {
    "lr": Bounds(0.0, low_inclusive=False),
    "momentum": Bounds(0.0, 1.0, high_inclusive=False),
    "beta1": Bounds(0.0, 1.0, high_inclusive=False),
    "beta2": Bounds(0.0, 1.0, high_inclusive=False),
    "eps": Bounds(0.0, low_inclusive=False),
    "rho": Bounds(0.0, 1.0, high_inclusive=False),
    "alpha": Bounds(0.0, 1.0, high_inclusive=False),
    "weight_decay": Bounds(0.0),
    "batch_size": Bounds(1),
    "hidden": Bounds(1),
    "layers": Bounds(0),
    "channels": Bounds(1),
    "dropout": Bounds(0.0, 1.0, high_inclusive=False),
    "label_smoothing": Bounds(0.0, 1.0, high_inclusive=False),
    "mixup_alpha": Bounds(0.0),
    "cutmix_alpha": Bounds(0.0),
    "aug_crop_pad": Bounds(0),
    "aug_crop_p": Bounds(0.0, 1.0),
    "aug_shift": Bounds(0),
    "aug_shift_p": Bounds(0.0, 1.0),
    "aug_rotate_deg": Bounds(0.0, 180.0),
    "aug_rotate_p": Bounds(0.0, 1.0),
    "aug_flip_p": Bounds(0.0, 1.0),
    "step_size": Bounds(1),
    "gamma": Bounds(0.0, 1.0, low_inclusive=False),
}

_LOWER_IS_BETTER = ("loss", "mse", "mae", "generalization_gap", "epoch_time_s")
_HIGHER_IS_BETTER = (*CLASSIFICATION_METRICS, "r2")


def better_direction(metric: str) -> Literal["minimize", "maximize"] | None:
    """Which way a reported metric improves (``mode: auto``); None when it has no better side."""
    base = metric.removesuffix("_std")
    if metric != base:
        return "minimize"
    name = base.removeprefix("train_").removeprefix("val_")
    if name in _LOWER_IS_BETTER:
        return "minimize"
    if name in _HIGHER_IS_BETTER:
        return "maximize"
    return None
