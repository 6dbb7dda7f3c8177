from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import torch

from tuneboard.objective import TrialContext

torch.set_num_threads(1)

ContextFactory = Callable[..., TrialContext]


class Recorder:
    """A reporter that keeps what it is given; optionally raises at one epoch."""

    def __init__(self, raise_at: int | None = None, exc: Exception | None = None) -> None:
        self.steps: list[tuple[int, dict[str, float]]] = []
        self.raise_at, self.exc = raise_at, exc

    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        if step == self.raise_at and self.exc is not None:
            raise self.exc
        self.steps.append((step, dict(metrics)))


@pytest.fixture
def make_ctx(tmp_path: Path) -> ContextFactory:
    """A TrialContext for the built-in trainer: tiny defaults, checkpoints under tmp_path."""

    def make(
        objective: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        checkpoint_dir: Path | None = None,
        **config: Any,
    ) -> TrialContext:
        return TrialContext(
            params={"hidden": 16, "layers": 1, "lr": 0.01, **(params or {})},
            config={
                "objective": {
                    "dataset": "iris", "model": "mlp", "max_epochs": 3, **(objective or {})
                },
                **config,
            },
            checkpoint_dir=checkpoint_dir or tmp_path / "checkpoints",
            seed=0,
            reporter=Recorder(),
        )

    return make
