"""Learners: what the loop trains. One model on one split, or K of them behind one face.

Train metrics are computed after each epoch on the whole train split in eval mode, exactly like
the validation ones (no dropout, mixup or augmentation, the epoch's final weights), so that
``train_loss`` and ``val_loss`` are comparable and the generalisation gap measures the model
rather than the regulariser. Losses are unregularised: cross-entropy without label smoothing;
for regression, the mean squared error on the standardised target (``mse``/``mae`` are in the
target's units).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from workers.training.augment import ImageAugment
from workers.training.datasets import Task
from workers.training.loop import Logs
from workers.training.metrics import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    generalization_gap,
)

__all__ = ["CrossValidation", "FoldTensors", "MixAugment", "SupervisedLearner"]

EVAL_BATCH_SIZE = 4096


@dataclass(frozen=True)
class FoldTensors:
    """One split's standardised features and targets, already on the training device.

    ``target_mean``/``target_std`` undo the regression target's scaling for the metrics.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    target_mean: float = 0.0
    target_std: float = 1.0


class MixAugment:
    """Mixup (Zhang et al. 2018) for any batch, CutMix (Yun et al. 2019) for image batches.

    With both alphas > 0, each batch uses one of them with equal odds. Returns the mixed batch,
    the partner targets and the weight ``lam`` of the original ones; the loss is
    ``lam * loss(y) + (1 - lam) * loss(partner)``, which for squared error equals the loss on
    the mixed target up to a constant, so regression mixes too.
    """

    def __init__(self, mixup_alpha: float, cutmix_alpha: float, seed: int) -> None:
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        self.rng = random.Random(seed)
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, float]:
        cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha <= 0 or self.rng.random() < 0.5)
        alpha = self.cutmix_alpha if cutmix else self.mixup_alpha
        lam = self.rng.betavariate(alpha, alpha)
        partner = torch.randperm(len(x), generator=self.generator).to(x.device)
        if not cutmix:
            return lam * x + (1.0 - lam) * x[partner], y[partner], lam
        height, width = x.shape[-2:]
        cut = math.sqrt(1.0 - lam)
        cy, cx = self.rng.randrange(height), self.rng.randrange(width)
        half_h, half_w = int(height * cut) // 2, int(width * cut) // 2
        top, bottom = max(cy - half_h, 0), min(cy + half_h, height)
        left, right = max(cx - half_w, 0), min(cx + half_w, width)
        mixed = x.clone()
        mixed[:, :, top:bottom, left:right] = x[partner, :, top:bottom, left:right]
        lam = 1.0 - (bottom - top) * (right - left) / (height * width)
        return mixed, y[partner], lam

    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = self.rng.getstate()
        return {"rng": [version, list(internal), gauss], "generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.generator.set_state(state["generator"])


class SupervisedLearner:
    """One model, its optimiser and one train/validation split; ``augment`` transforms each
    training batch (before mixup or cutmix)."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        data: FoldTensors,
        *,
        task: Task,
        batch_size: int,
        seed: int,
        gap_metric: str,
        label_smoothing: float = 0.0,
        mix: MixAugment | None = None,
        augment: ImageAugment | None = None,
    ) -> None:
        self.model, self.optimizer, self.data = model, optimizer, data
        self.task = task
        self.batch_size = max(1, min(batch_size, len(data.x_train)))
        self.gap_metric = gap_metric
        self.label_smoothing = label_smoothing
        self.mix = mix
        self.augment = augment
        self.generator = torch.Generator().manual_seed(seed)
        self._targets = {
            "train": self._original_units(data.y_train),
            "val": self._original_units(data.y_val),
        }

    def _original_units(self, y: torch.Tensor) -> NDArray[Any]:
        values = y.detach().cpu().numpy()
        if self.task == "regression":
            units = values.astype(np.float64) * self.data.target_std + self.data.target_mean
            return units.astype(np.float32)
        return values.astype(np.int64)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = value

    def _loss(self, out: torch.Tensor, y: torch.Tensor, smoothing: float) -> torch.Tensor:
        if self.task == "regression":
            return F.mse_loss(out.squeeze(-1), y)
        return F.cross_entropy(out, y, label_smoothing=smoothing)

    def train_epoch(self, epoch: int) -> None:
        self.model.train()
        x_all, y_all = self.data.x_train, self.data.y_train
        n = len(x_all)
        order = torch.randperm(n, generator=self.generator).to(x_all.device)
        for start in range(0, n, self.batch_size):
            index = order[start : start + self.batch_size]
            if start > 0 and len(index) == 1:
                break  # batch norm cannot train on a single sample
            x, y = x_all[index], y_all[index]
            if self.augment is not None:
                x = self.augment(x)
            self.optimizer.zero_grad(set_to_none=True)
            smoothing = self.label_smoothing
            if self.mix is not None:
                x, partner, lam = self.mix(x, y)
                out = self.model(x)
                loss = lam * self._loss(out, y, smoothing) + (1 - lam) * self._loss(
                    out, partner, smoothing
                )
            else:
                loss = self._loss(self.model(x), y, smoothing)
            loss.backward()
            self.optimizer.step()

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        chunks = [self.model(x[i : i + EVAL_BATCH_SIZE]) for i in range(0, len(x), EVAL_BATCH_SIZE)]
        return torch.cat(chunks)

    def _split_logs(self, split: str, x: torch.Tensor, y: torch.Tensor) -> Logs:
        out = self._predict(x)
        logs = {f"{split}_loss": float(self._loss(out, y, 0.0))}
        target = self._targets[split]
        if self.task == "regression":
            pred = out.squeeze(-1).double().cpu().numpy()
            pred = (pred * self.data.target_std + self.data.target_mean).astype(np.float32)
            for name, fn in REGRESSION_METRICS.items():
                logs[f"{split}_{name}"] = fn(target, pred)
        else:
            proba = torch.softmax(out.float(), dim=-1).cpu().numpy()
            for name, cfn in CLASSIFICATION_METRICS.items():
                logs[f"{split}_{name}"] = cfn(target, proba)
        return logs

    def evaluate(self) -> Logs:
        self.model.eval()
        with torch.no_grad():
            train = self._split_logs("train", self.data.x_train, self.data.y_train)
            val = self._split_logs("val", self.data.x_val, self.data.y_val)
        logs = {"train_loss": train.pop("train_loss"), "val_loss": val.pop("val_loss")}
        logs |= train | val
        logs["generalization_gap"] = generalization_gap(logs, self.gap_metric)
        return logs

    def weights(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def load_weights(self, weights: Any) -> None:
        self.model.load_state_dict(weights)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "model": self.weights(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
        }
        if self.mix is not None:
            state["mix"] = self.mix.state_dict()
        if self.augment is not None:
            state["augment"] = self.augment.state_dict()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        if self.mix is not None:
            self.mix.load_state_dict(state["mix"])
        if self.augment is not None:
            self.augment.load_state_dict(state["augment"])


class CrossValidation:
    """K learners trained side by side; logs are the mean over folds plus ``<name>_std``.

    ``lr`` and ``epoch_time_s`` are shared, so they get no ``_std``. The spread is the
    population standard deviation (numpy's default, as in ``cross_val_score(...).std()``).
    """

    def __init__(self, folds: Sequence[SupervisedLearner]) -> None:
        if not folds:
            raise ValueError("cross-validation needs at least one fold")
        self.folds = list(folds)

    @property
    def lr(self) -> float:
        return self.folds[0].lr

    @lr.setter
    def lr(self, value: float) -> None:
        for fold in self.folds:
            fold.lr = value

    def train_epoch(self, epoch: int) -> None:
        for fold in self.folds:
            fold.train_epoch(epoch)

    def evaluate(self) -> Logs:
        per_fold = [fold.evaluate() for fold in self.folds]
        values = {name: np.array([logs[name] for logs in per_fold]) for name in per_fold[0]}
        logs = {name: float(v.mean()) for name, v in values.items()}
        logs |= {f"{name}_std": float(v.std()) for name, v in values.items()}
        return logs

    def weights(self) -> list[dict[str, torch.Tensor]]:
        return [fold.weights() for fold in self.folds]

    def load_weights(self, weights: Any) -> None:
        for fold, w in zip(self.folds, weights, strict=True):
            fold.load_weights(w)

    def state_dict(self) -> dict[str, Any]:
        return {"folds": [fold.state_dict() for fold in self.folds]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        for fold, s in zip(self.folds, state["folds"], strict=True):
            fold.load_state_dict(s)
