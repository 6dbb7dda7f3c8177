"""The built-in trainer's models: an MLP for any data and a small CNN for image-shaped data."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from workers.training.errors import TrainingConfigError

__all__ = ["ACTIVATIONS", "CNN", "MLP", "MODELS", "NORMS", "ModelSpec", "build_model"]

ACTIVATIONS: Mapping[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "silu": nn.SiLU,
}
NORMS: tuple[str, ...] = ("none", "batch", "layer")


@dataclass(frozen=True)
class ModelSpec:
    """The architecture hyperparameters, already validated; ``layers`` and ``channels`` are
    read by the model that uses them."""

    hidden: int = 128
    layers: int = 2
    channels: int = 16
    dropout: float = 0.0
    norm: str = "none"
    activation: str = "relu"


def _norm1d(norm: str, width: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm1d(width)
    if norm == "layer":
        return nn.LayerNorm(width)
    return nn.Identity()


def _norm2d(norm: str, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


def _dropout(p: float) -> nn.Module:
    return nn.Dropout(p) if p > 0 else nn.Identity()


class MLP(nn.Sequential):
    """Flatten, then ``layers`` x (Linear, norm, activation, dropout), then a Linear head.

    ``layers=0`` is a linear model (logistic or linear regression).
    """

    def __init__(self, in_features: int, out_features: int, spec: ModelSpec) -> None:
        blocks: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for _ in range(spec.layers):
            blocks += [
                nn.Linear(width, spec.hidden, bias=spec.norm != "batch"),
                _norm1d(spec.norm, spec.hidden),
                ACTIVATIONS[spec.activation](),
                _dropout(spec.dropout),
            ]
            width = spec.hidden
        blocks.append(nn.Linear(width, out_features))
        super().__init__(*blocks)


class CNN(nn.Module):
    """Two conv blocks (``channels``, then twice that; 3x3, norm, activation, 2x2 max-pool
    while the image is at least 2x2), then a dense head of width ``hidden`` with dropout."""

    def __init__(self, in_shape: tuple[int, int, int], out_features: int, spec: ModelSpec) -> None:
        super().__init__()
        in_channels, height, width = in_shape
        layers: list[nn.Module] = []
        for out_channels in (spec.channels, 2 * spec.channels):
            layers += [
                nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=spec.norm == "none"),
                _norm2d(spec.norm, out_channels),
                ACTIVATIONS[spec.activation](),
            ]
            if height >= 2 and width >= 2:
                layers.append(nn.MaxPool2d(2))
                height, width = height // 2, width // 2
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels * height * width, spec.hidden, bias=spec.norm != "batch"),
            _norm1d(spec.norm, spec.hidden),
            ACTIVATIONS[spec.activation](),
            _dropout(spec.dropout),
            nn.Linear(spec.hidden, out_features),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.features(x))
        return out


def _mlp(input_shape: tuple[int, ...], out_features: int, spec: ModelSpec) -> nn.Module:
    return MLP(int(torch.Size(input_shape).numel()), out_features, spec)


def _cnn(input_shape: tuple[int, ...], out_features: int, spec: ModelSpec) -> nn.Module:
    if len(input_shape) != 3:
        raise TrainingConfigError(
            f"objective.model: cnn needs image-shaped data (channels, height, width); "
            f"this dataset has {input_shape[0]} flat features, use mlp"
        )
    c, h, w = input_shape
    return CNN((c, h, w), out_features, spec)


MODELS: Mapping[str, Callable[[tuple[int, ...], int, ModelSpec], nn.Module]] = {
    "mlp": _mlp,
    "cnn": _cnn,
}


def build_model(
    name: str, input_shape: tuple[int, ...], out_features: int, spec: ModelSpec
) -> nn.Module:
    """A fresh model (initialised from the global torch RNG) for one sample's ``input_shape``."""
    if name not in MODELS:
        raise TrainingConfigError(
            f"objective.model: unknown model {name!r}; expected one of {', '.join(MODELS)}"
        )
    if spec.norm not in NORMS:
        raise TrainingConfigError(f"params.norm: unknown {spec.norm!r}; expected one of {NORMS}")
    if spec.activation not in ACTIVATIONS:
        raise TrainingConfigError(
            f"params.activation: unknown {spec.activation!r}; "
            f"expected one of {', '.join(ACTIVATIONS)}"
        )
    return MODELS[name](input_shape, out_features, spec)
