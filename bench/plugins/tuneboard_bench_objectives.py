"""The benchmarks' objective, registered by the ``.dist-info`` beside it (a directory on
``PYTHONPATH`` is enough for ``importlib.metadata`` to find the entry point)."""

from __future__ import annotations

import time
from typing import Any

REPORTS = 20


def noop(ctx: Any) -> float:
    """No work: ``REPORTS`` reports of ``loss`` (a function of ``x``), then the last one."""
    x = float(ctx.params["x"])
    loss = 0.0
    for step in range(1, REPORTS + 1):
        loss = (x - 2.0) ** 2 + 1.0 / step
        ctx.report(step, loss=loss)
    return loss


def ingest(ctx: Any) -> float:
    """Metric ingest: ``reports`` steps of ``metrics`` named values each, as fast as they come."""
    reports, width = int(ctx.params["reports"]), int(ctx.params["metrics"])
    names = [f"m{i}" for i in range(width - 1)]
    loss = 0.0
    for step in range(1, reports + 1):
        loss = 1.0 / step
        ctx.report(step, loss=loss, **{name: step * 0.5 for name in names})
    return loss


def sleepy(ctx: Any) -> float:
    """A stand-in for training: ``REPORTS`` reports spread over ``trial_s`` seconds of sleep (a
    GPU worker's host process waits on its device the same way)."""
    x, pause = float(ctx.params["x"]), float(ctx.params["trial_s"]) / REPORTS
    loss = 0.0
    for step in range(1, REPORTS + 1):
        time.sleep(pause)
        loss = (x - 2.0) ** 2 + 1.0 / step
        ctx.report(step, loss=loss)
    return loss
