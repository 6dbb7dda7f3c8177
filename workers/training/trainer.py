"""The built-in objective: a study's dataset, model and hyperparameters, trained by the loop."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import torch

# torch.optim imports it when the first optimiser is built, a second or more: imported with the
# trainer, it is paid once when a worker starts (before it forks its pool) instead of by a trial.
import torch._dynamo

from tuneboard.objective import TrialContext
from tuneboard.spec.catalog import reported_metric_names
from workers.training.augment import ImageAugment, ImageAugmentSpec
from workers.training.callbacks import (
    EarlyStopping,
    LearningRateScheduler,
    MetricReporter,
    ModelCheckpoint,
    StopOnRequest,
    TerminateOnNaN,
    load_checkpoint,
)
from workers.training.config import TrainerConfig
from workers.training.datasets import (
    Dataset,
    Fold,
    Standardizer,
    holdout_split,
    kfold_splits,
    load_dataset,
)
from workers.training.errors import TrainingConfigError
from workers.training.learner import CrossValidation, FoldTensors, MixAugment, SupervisedLearner
from workers.training.loop import Callback, Learner, Logs, Loop
from workers.training.models import ModelSpec, build_model
from workers.training.optimizers import OptimizerSpec, build_optimizer, scaled_lr
from workers.training.schedules import build_schedule

__all__ = ["augment_spec", "build_learner", "reported_names", "resolve_device", "train"]


def reported_names(task: str, *, cross_validated: bool = False) -> frozenset[str]:
    """The names of every epoch's logs: the catalog's, plus ``<name>_std`` under k-fold."""
    return reported_metric_names(task, cross_validated=cross_validated)


def resolve_device(device: str) -> torch.device:
    """``auto``: CUDA if this process sees a GPU, else the CPU; other names as torch reads them."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise TrainingConfigError(f"resources.device: {exc}") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise TrainingConfigError(f"resources.device: {device} requested but no GPU is visible")
    return resolved


def _check_names(cfg: TrainerConfig, dataset: Dataset) -> None:
    reported = reported_names(dataset.task, cross_validated=cfg.validation.k_folds is not None)
    hp = cfg.hyper
    monitored = {f"objective.metric {m}": m for m in cfg.metrics}
    monitored["callbacks.checkpoint.monitor"] = cfg.checkpoint.monitor
    if cfg.early_stopping is not None:
        monitored["early_stopping.monitor"] = cfg.early_stopping.monitor
    if cfg.lr_schedule.type == "reduce_on_plateau":
        monitored["callbacks.lr_schedule.monitor"] = cfg.lr_schedule.options.get(
            "monitor", "val_loss"
        )
    for where, name in monitored.items():
        if name not in reported:
            raise TrainingConfigError(
                f"{where}: {name!r} is not reported for {dataset.task} on {dataset.name}; "
                f"reported: {', '.join(sorted(reported))}"
            )
    if hp.cutmix_alpha > 0 and not dataset.is_image:
        raise TrainingConfigError(
            f"params.cutmix_alpha: cutmix needs image-shaped data; {dataset.name} is not"
        )
    if augment_spec(cfg).active and not dataset.is_image:
        switches = ("aug_crop_pad", "aug_shift", "aug_rotate_deg", "aug_flip_p")
        augmented = [name for name in switches if getattr(hp, name) > 0]
        raise TrainingConfigError(
            f"params.{augmented[0]}: image augmentation needs image-shaped data; "
            f"{dataset.name} is not"
        )


def augment_spec(cfg: TrainerConfig) -> ImageAugmentSpec:
    hp = cfg.hyper
    return ImageAugmentSpec(
        crop_pad=hp.aug_crop_pad, crop_p=hp.aug_crop_p, shift=hp.aug_shift,
        shift_p=hp.aug_shift_p, rotate_deg=hp.aug_rotate_deg, rotate_p=hp.aug_rotate_p,
        flip_p=hp.aug_flip_p,
    )


def _fold_tensors(dataset: Dataset, fold: Fold, device: torch.device) -> FoldTensors:
    scaler = Standardizer.fit(dataset.x[fold.train])

    def features(rows: np.ndarray[Any, Any]) -> torch.Tensor:
        return torch.from_numpy(scaler.transform(dataset.x[rows])).to(device)

    if dataset.task == "classification":
        y_train = torch.from_numpy(dataset.y[fold.train].copy()).to(device)
        y_val = torch.from_numpy(dataset.y[fold.val].copy()).to(device)
        return FoldTensors(features(fold.train), y_train, features(fold.val), y_val)
    y = dataset.y.astype(np.float64)
    mean, std = float(y[fold.train].mean()), float(y[fold.train].std()) or 1.0

    def targets(rows: np.ndarray[Any, Any]) -> torch.Tensor:
        return torch.from_numpy(((y[rows] - mean) / std).astype(np.float32)).to(device)

    return FoldTensors(
        features(fold.train), targets(fold.train), features(fold.val), targets(fold.val),
        target_mean=mean, target_std=std,
    )


def _folds(cfg: TrainerConfig, dataset: Dataset) -> list[Fold]:
    v = cfg.validation
    if v.k_folds is not None:
        return kfold_splits(dataset, k=v.k_folds, seed=v.seed, stratify=v.stratify)
    return [holdout_split(dataset, fraction=v.fraction, stratify=v.stratify, seed=v.seed)]


def build_learner(
    cfg: TrainerConfig, dataset: Dataset, base_lr: float, seed: int, device: torch.device
) -> Learner:
    """The trial's model(s), optimiser(s) and split(s): what a seed and a config make, so that
    a finished trial's validation split can be rebuilt from its study (ensembles do)."""
    hp = cfg.hyper
    augment = augment_spec(cfg)
    spec = ModelSpec(
        hidden=hp.hidden, layers=hp.layers, channels=hp.channels, dropout=hp.dropout,
        norm=hp.norm, activation=hp.activation,
    )
    out_features = dataset.n_classes if dataset.task == "classification" else 1
    mixing = hp.mixup_alpha > 0 or hp.cutmix_alpha > 0
    learners = []
    for i, fold in enumerate(_folds(cfg, dataset)):
        model = build_model(cfg.model, tuple(dataset.x.shape[1:]), out_features, spec).to(device)
        optimizer = build_optimizer(
            model,
            OptimizerSpec(
                name=hp.optimizer, lr=base_lr, momentum=hp.momentum, beta1=hp.beta1,
                beta2=hp.beta2, eps=hp.eps, rho=hp.rho, alpha=hp.alpha,
                weight_decay=hp.weight_decay,
            ),
        )
        fold_seed = seed + 7919 * i
        learners.append(
            SupervisedLearner(
                model, optimizer, _fold_tensors(dataset, fold, device),
                task=dataset.task, batch_size=hp.batch_size, seed=fold_seed,
                gap_metric=cfg.metric, label_smoothing=hp.label_smoothing,
                mix=MixAugment(hp.mixup_alpha, hp.cutmix_alpha, fold_seed + 1) if mixing else None,
                augment=ImageAugment(augment, fold_seed + 2) if augment.active else None,
            )
        )
    return CrossValidation(learners) if cfg.validation.k_folds is not None else learners[0]


class _Timed(Callback):
    """``inner`` with its epoch-end hook timed under the trial's span ``name``; its state keeps
    the inner callback's key, so checkpoints read the same with or without timing."""

    def __init__(
        self, inner: Callback, span: Callable[[str], AbstractContextManager[None]], name: str
    ) -> None:
        self.inner, self.span, self.name = inner, span, name

    @property
    def state_key(self) -> str:
        return self.inner.state_key

    def set_loop(self, loop: Loop) -> None:
        super().set_loop(loop)
        self.inner.set_loop(loop)

    def on_train_begin(self) -> None:
        self.inner.on_train_begin()

    def on_epoch_begin(self, epoch: int) -> None:
        self.inner.on_epoch_begin(epoch)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        with self.span(self.name):
            self.inner.on_epoch_end(epoch, logs)

    def on_train_end(self) -> None:
        self.inner.on_train_end()

    def state_dict(self) -> dict[str, Any]:
        return self.inner.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.inner.load_state_dict(state)


def _callbacks(cfg: TrainerConfig, ctx: TrialContext, base_lr: float) -> list[Callback]:
    hp = cfg.hyper
    schedule_options = dict(cfg.lr_schedule.options)
    for key in ("step_size", "gamma"):
        if key in ctx.params or key not in schedule_options:
            schedule_options[key] = getattr(hp, key)
    callbacks: list[Callback] = []
    if cfg.terminate_on_nan:
        callbacks.append(TerminateOnNaN())
    if cfg.early_stopping is not None:
        es = cfg.early_stopping
        callbacks.append(
            EarlyStopping(es.monitor, es.mode, es.patience, es.min_delta, es.restore_best_weights)
        )
    schedule = build_schedule(
        cfg.lr_schedule.type, schedule_options,
        max_epochs=cfg.max_epochs, warmup_epochs=cfg.lr_schedule.warmup_epochs, base_lr=base_lr,
    )
    callbacks.append(LearningRateScheduler(schedule, base_lr))
    # The report includes the pruner's decision; the checkpoint, whatever the store waits for
    # (it writes after the reports made before it: a retry never reports a saved epoch again).
    callbacks.append(_Timed(MetricReporter(ctx.report), ctx.span, "report"))
    if cfg.checkpoint.keep:
        ck = cfg.checkpoint
        checkpoint = ModelCheckpoint(ctx.checkpoint_store(), ck.keep, ck.monitor, ck.mode)
        callbacks.append(_Timed(checkpoint, ctx.span, "checkpoint"))
    callbacks.append(StopOnRequest(ctx.should_stop))
    return callbacks


def _best_epoch(history: Sequence[Logs], metric: str, direction: str) -> int:
    values = [logs[metric] for logs in history]
    finite = [(v, i) for i, v in enumerate(values) if not math.isnan(v)]
    if not finite:
        return len(history)
    pick = min(finite) if direction == "min" else max(finite, key=lambda p: (p[0], -p[1]))
    return pick[1] + 1


def train(ctx: TrialContext) -> dict[str, float]:
    """Train the study's model on its dataset; the built-in ``classifier``/``regressor`` objective.

    Reports every epoch's logs through ``ctx.report`` (which may raise ``TrialPruned``; it
    propagates), stops after the epoch in which ``ctx.should_stop()`` turns true, saves
    ``latest.pt`` (and ``best.pt`` if asked) in ``ctx.checkpoint_store()`` and resumes from
    ``ctx.resume_from`` at the epoch after the saved one. Raises ``TrainingConfigError`` for a
    spec it cannot run and ``TrainingDiverged`` when the loss goes NaN under TerminateOnNaN.

    Returns the final epoch's logs (with early stopping's ``restore_best_weights``, the best
    epoch's, matching the weights the model ends with) plus ``epochs_run`` and ``best_epoch``:
    early stopping's best epoch when it runs, else the epoch best at the study metric.
    """
    cfg = TrainerConfig.from_context(ctx)
    device = resolve_device(ctx.device)
    torch.manual_seed(ctx.seed)
    with ctx.span("data"):
        dataset = load_dataset(
            cfg.dataset, options=cfg.dataset_options, target=cfg.target, task=cfg.task
        )
        _check_names(cfg, dataset)
    rule, base_batch = cfg.lr_scaling or (None, 1)
    base_lr = scaled_lr(cfg.hyper.lr, cfg.hyper.batch_size, rule, base_batch)
    with ctx.span("model"):
        learner = build_learner(cfg, dataset, base_lr, ctx.seed, device)
        callbacks = _callbacks(cfg, ctx, base_lr)
        loop = Loop(learner, callbacks, max_epochs=cfg.max_epochs)
    if ctx.resume_from is not None:
        with ctx.span("resume"):
            loop.load_state_dict(load_checkpoint(ctx.resume_from))
    with ctx.span("epochs"):
        history = loop.fit()
    early = next((cb for cb in callbacks if isinstance(cb, EarlyStopping)), None)
    if early is not None and early.best_epoch:
        best_epoch = early.best_epoch
        final = history[best_epoch - 1] if early.restore_best_weights else history[-1]
    else:
        best_epoch = _best_epoch(history, cfg.metric, cfg.direction)
        final = history[-1]
    return {**final, "epochs_run": float(loop.epoch), "best_epoch": float(best_epoch)}
