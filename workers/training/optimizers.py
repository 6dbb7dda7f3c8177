"""Optimisers by the names in :data:`tuneboard.spec.catalog.OPTIMIZERS`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from workers.training.errors import TrainingConfigError

__all__ = ["OPTIMIZERS", "OptimizerSpec", "build_optimizer", "param_groups", "scaled_lr"]


@dataclass(frozen=True)
class OptimizerSpec:
    """Optimiser hyperparameters; each optimiser reads the ones that apply to it.

    ``momentum`` drives momentum, nesterov and rmsprop; ``beta1``/``beta2`` adam and adamw;
    ``rho`` adadelta; ``alpha`` rmsprop's smoothing; ``eps`` all adaptive ones.
    """

    name: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    rho: float = 0.9
    alpha: float = 0.99
    weight_decay: float = 0.0


ParamGroups = list[dict[str, Any]]
Factory = Callable[[ParamGroups, OptimizerSpec], torch.optim.Optimizer]

OPTIMIZERS: Mapping[str, Factory] = {
    "sgd": lambda groups, s: torch.optim.SGD(groups, lr=s.lr),
    "momentum": lambda groups, s: torch.optim.SGD(groups, lr=s.lr, momentum=s.momentum),
    "nesterov": lambda groups, s: torch.optim.SGD(
        groups, lr=s.lr, momentum=s.momentum, nesterov=True
    ),
    "adagrad": lambda groups, s: torch.optim.Adagrad(groups, lr=s.lr, eps=s.eps),
    "adadelta": lambda groups, s: torch.optim.Adadelta(groups, lr=s.lr, rho=s.rho, eps=s.eps),
    "rmsprop": lambda groups, s: torch.optim.RMSprop(
        groups, lr=s.lr, alpha=s.alpha, eps=s.eps, momentum=s.momentum
    ),
    "adam": lambda groups, s: torch.optim.Adam(
        groups, lr=s.lr, betas=(s.beta1, s.beta2), eps=s.eps
    ),
    "adamw": lambda groups, s: torch.optim.AdamW(
        groups, lr=s.lr, betas=(s.beta1, s.beta2), eps=s.eps
    ),
}


def param_groups(model: nn.Module, weight_decay: float) -> ParamGroups:
    """Weight decay on weight matrices and kernels only, not on biases and norm scales.

    Decaying biases and norm parameters only fights the normalisation; this is the usual split
    (BERT, timm). With ``weight_decay == 0`` the groups behave as one.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, spec: OptimizerSpec) -> torch.optim.Optimizer:
    """The named optimiser over ``model``'s parameters. adamw's decay is decoupled (AdamW);
    the others add it to the gradient (L2)."""
    if spec.name not in OPTIMIZERS:
        raise TrainingConfigError(
            f"params.optimizer: unknown optimizer {spec.name!r}; "
            f"expected one of {', '.join(OPTIMIZERS)}"
        )
    groups = [g for g in param_groups(model, spec.weight_decay) if g["params"]]
    return OPTIMIZERS[spec.name](groups, spec)


def scaled_lr(lr: float, batch_size: int, rule: str | None, base_batch_size: int) -> float:
    """The learning rate for ``batch_size`` under a scaling rule.

    ``linear`` (Goyal et al. 2017): ``lr * batch_size / base_batch_size``;
    ``sqrt`` (Krizhevsky 2014, common with Adam): ``lr * sqrt(batch_size / base_batch_size)``.
    """
    if rule is None:
        return lr
    if base_batch_size < 1:
        raise TrainingConfigError("lr_scaling.base_batch_size: must be at least 1")
    ratio = batch_size / base_batch_size
    if rule == "linear":
        return lr * ratio
    if rule == "sqrt":
        return lr * ratio**0.5
    raise TrainingConfigError(f"lr_scaling.rule: unknown {rule!r}; expected linear or sqrt")
