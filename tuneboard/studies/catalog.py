"""Names the study spec accepts for the built-in trainer.

The API validates specs against these lists without importing torch or ``workers``; the
trainer in ``workers/training`` implements exactly these (a test checks they agree).
"""

from __future__ import annotations

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


def reported_metric_names(task: str) -> frozenset[str]:
    """Every per-epoch metric name the built-in trainer reports for a task."""
    base = {"train_loss", "val_loss", "lr", "epoch_time_s", "generalization_gap"}
    ms = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    for m in ms:
        base |= {f"train_{m}", f"val_{m}"}
    return frozenset(base)
