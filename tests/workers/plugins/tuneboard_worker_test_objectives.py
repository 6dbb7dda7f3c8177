"""An objective for the worker tests, registered by the ``.dist-info`` beside it: a directory on
``sys.path``/``PYTHONPATH`` is all it takes for ``importlib.metadata`` to find its entry point.

``steps`` reports ``loss`` for ``steps`` steps of ``sleep_s`` seconds each, checkpointing its
step to ``latest.pt`` in ``ctx.checkpoint_store()`` (JSON: what matters is the key) and
resuming from ``ctx.resume_from``. Each step also reports ``resumed_at`` (the step this run
started from) and ``seed``. ``fail_at`` raises at that step, ``exit_at`` kills the process
there, ``nan: true`` returns NaN, ``checkpoint: false`` saves no checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any


def steps(ctx: Any) -> dict[str, float]:
    p = ctx.params
    x = float(p.get("x", 0.0))
    n = int(p.get("steps", 5))
    sleep_s = float(p.get("sleep_s", 0.0))
    first = 1
    if ctx.resume_from is not None:
        first = int(json.loads(ctx.resume_from.read_text())["step"]) + 1
    loss = math.inf
    for step in range(first, n + 1):
        time.sleep(sleep_s)
        if step == p.get("fail_at"):
            raise RuntimeError(f"boom at step {step}")
        if step == p.get("exit_at"):
            os._exit(3)
        loss = (x - 2.0) ** 2 + 1.0 / step
        ctx.report(step, loss=loss, resumed_at=float(first), seed=float(ctx.seed))
        if p.get("checkpoint", True):
            ctx.checkpoint_store().save("latest.pt", json.dumps({"step": step}).encode())
        if ctx.should_stop():
            break
    if p.get("nan"):
        return {"loss": math.nan}
    return {"loss": loss, "resumed_at": float(first)}
