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

# Hyperparameters the built-in trainer reads from ``params`` (search space or ``fixed``), with
# the defaults it uses when a study leaves them out. A built-in study naming any other parameter
# is rejected, so a typo ("learning_rate") cannot be silently ignored.
TRAINER_PARAM_DEFAULTS: dict[str, object] = {
    "lr": 1e-3,
    "optimizer": "adam",
    "momentum": 0.9,          # momentum / nesterov / rmsprop
    "beta1": 0.9,             # adam / adamw
    "beta2": 0.999,
    "eps": 1e-8,
    "rho": 0.9,               # adadelta
    "alpha": 0.99,            # rmsprop smoothing
    "weight_decay": 0.0,
    "batch_size": 64,
    "hidden": 128,            # width of each hidden layer (mlp) / of the dense head (cnn)
    "layers": 2,              # number of hidden layers (mlp)
    "channels": 16,           # first conv width (cnn); doubled in the second block
    "dropout": 0.0,
    "norm": "none",           # none | batch | layer
    "activation": "relu",     # relu | gelu | tanh | silu
    "label_smoothing": 0.0,
    "mixup_alpha": 0.0,       # > 0 turns mixup on (image-shaped data)
    "cutmix_alpha": 0.0,      # > 0 turns cutmix on (image-shaped data)
    "step_size": 10,          # step schedule: epochs between decays
    "gamma": 0.1,             # step schedule: decay factor
}
NORMS: tuple[str, ...] = ("none", "batch", "layer")
ACTIVATIONS: tuple[str, ...] = ("relu", "gelu", "tanh", "silu")
