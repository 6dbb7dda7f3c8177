"""What several benchmarks share: the digits MLP task run in process, a live API server,
latency percentiles and processes started together. (The benchmarks run as
``python bench/<name>.py``, so this folder is on ``sys.path`` and they import this as
``_common``.)"""

from __future__ import annotations

import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import optuna

from tuneboard.objective import TrialContext
from tuneboard.optimization import suggest_params
from tuneboard.spec import StudySpec

ROOT = Path(__file__).resolve().parents[1]

# --- The digits MLP, through Tuneboard's built-in trainer in this process -------------------

DIGITS_OBJECTIVE: dict[str, Any] = {
    "builtin": "classifier", "dataset": "digits", "model": "mlp",
    "metric": "val_accuracy", "direction": "maximize",
    "validation": {"fraction": 0.2, "stratify": True, "seed": 0},
}
DIGITS_SPACE: dict[str, Any] = {
    "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "optimizer": {"type": "categorical", "choices": ["sgd", "momentum", "adam", "adamw"]},
    "batch_size": {"type": "int", "low": 16, "high": 128, "log": True},
    "hidden": {"type": "int", "low": 32, "high": 256, "step": 32},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5},
}


def trial_context(
    spec: StudySpec,
    trial: optuna.Trial,
    workdir: Path,
    reporter: Callable[[int, Any], None],
) -> TrialContext:
    """The built-in trainer's context for ``trial``, as a worker builds it but with no early
    stopping: the sampler's params (and the spec's fixed ones), on CPU, seeded by the number."""
    return TrialContext(
        params={**suggest_params(trial, spec.search_space), **spec.fixed},
        device="cpu",
        checkpoint_dir=workdir / str(trial.number),
        config={"objective": spec.objective.model_dump(mode="json"), "early_stopping": None,
                "callbacks": spec.callbacks.model_dump(mode="json")},
        seed=trial.number,
        trial_number=trial.number,
        reporter=reporter,
    )


# --- A live API server ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_api(
    database_url: str, port: int, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``uvicorn api.main:app``, one process, on ``port`` over ``database_url``, with the rate
    limits out of a benchmark's way and ``env`` on top; returns once ``/healthz`` answers."""
    environ = {
        **os.environ,
        "TUNEBOARD_DATABASE_URL": database_url,
        "TUNEBOARD_BROKER_URL": "redis://127.0.0.1:6379/14",
        "TUNEBOARD_RATE_LIMIT_PER_KEY": "10000000/minute",
        "TUNEBOARD_RATE_LIMIT_PER_ADDRESS": "10000000/minute",
        **(env or {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=environ,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the API did not start")
        time.sleep(0.1)


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50, p95 and max of some latencies."""
    ordered = sorted(samples_ms)
    return {
        "p50": statistics.median(ordered),
        "p95": ordered[int(0.95 * (len(ordered) - 1))],
        "max": ordered[-1],
    }


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine so far, from Linux's /proc/stat: two readings
    give the share of every CPU that was busy in between, whoever was busy (this bench's
    processes, the database, anything else on the machine)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    busy, total = after[0] - before[0], after[1] - before[1]
    return busy / total if total else 0.0


# --- Processes started together ---------------------------------------------------------------


@dataclass
class Together:
    """What ``run_together`` measured: the span from the first process's start to the last one's
    end, and how busy the machine's CPUs were meanwhile (whoever was busy)."""

    wall_s: float
    busy: float


def run_together(
    prepare: Callable[..., Callable[[], object]], arguments: Sequence[tuple[Any, ...]],
    timeout: float = 3600,
) -> Together:
    """One fresh (spawned) process per tuple of ``arguments``, each calling ``prepare(*args)``
    (imports, loading a study: not measured) and, once every one has, the run it returned, all
    at once. ``prepare`` is a module-level function of the benchmark; a process's error is
    raised here with its traceback."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(arguments) + 1), ctx.Queue()
    procs = [ctx.Process(target=_together, args=(prepare, args, barrier, results))
             for args in arguments]
    for proc in procs:
        proc.start()
    try:
        try:
            barrier.wait(timeout=600)
        except threading.BrokenBarrierError:
            raise RuntimeError(results.get(timeout=60)) from None
        jiffies = cpu_jiffies()
        done = [results.get(timeout=timeout) for _ in procs]
        busy = busy_share(jiffies, cpu_jiffies())
    finally:
        for proc in procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
    failed = [d for d in done if isinstance(d, str)]
    if failed:
        raise RuntimeError(failed[0])
    return Together(wall_s=max(end for _, end in done) - min(start for start, _ in done),
                    busy=busy)


def _together(prepare: Callable[..., Callable[[], object]], args: tuple[Any, ...],
              barrier: Any, results: Any) -> None:
    try:
        run = prepare(*args)
        barrier.wait()
        start = time.time()
        run()
        results.put((start, time.time()))
    except BaseException:
        results.put(traceback.format_exc())  # before the others learn of it: theirs come later
        barrier.abort()
        raise
