"""The built-in trainer: a small epoch loop, callbacks, models, optimisers and datasets.

Knows nothing of Celery or Optuna: it sees a :class:`tuneboard.objective.TrialContext` and
reports through it. :func:`train` is the built-in objective; the rest is public so that custom
objectives can reuse the loop and its callbacks.
"""

from workers.training.callbacks import (
    EarlyStopping,
    LearningRateScheduler,
    MetricReporter,
    ModelCheckpoint,
    StopOnRequest,
    TerminateOnNaN,
    dump_checkpoint,
    load_checkpoint,
)
from workers.training.config import HyperParams, TrainerConfig
from workers.training.datasets import DATASETS, Dataset, load_dataset
from workers.training.errors import TrainingConfigError, TrainingDiverged, TrainingError
from workers.training.learner import CrossValidation, SupervisedLearner
from workers.training.loop import Callback, Learner, Logs, Loop
from workers.training.metrics import CLASSIFICATION_METRICS, REGRESSION_METRICS
from workers.training.models import ACTIVATIONS, MODELS, NORMS, build_model
from workers.training.optimizers import OPTIMIZERS, build_optimizer
from workers.training.schedules import SCHEDULES, Schedule, build_schedule
from workers.training.trainer import resolve_device, train

__all__ = [
    "ACTIVATIONS",
    "CLASSIFICATION_METRICS",
    "DATASETS",
    "MODELS",
    "NORMS",
    "OPTIMIZERS",
    "REGRESSION_METRICS",
    "SCHEDULES",
    "Callback",
    "CrossValidation",
    "Dataset",
    "EarlyStopping",
    "HyperParams",
    "Learner",
    "LearningRateScheduler",
    "Logs",
    "Loop",
    "MetricReporter",
    "ModelCheckpoint",
    "Schedule",
    "StopOnRequest",
    "SupervisedLearner",
    "TerminateOnNaN",
    "TrainerConfig",
    "TrainingConfigError",
    "TrainingDiverged",
    "TrainingError",
    "build_model",
    "build_optimizer",
    "build_schedule",
    "dump_checkpoint",
    "load_checkpoint",
    "load_dataset",
    "resolve_device",
    "train",
]
