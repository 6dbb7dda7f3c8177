"""GPU busy time of a small-model study through a real ``tuneboard worker``, with 1 and K trials
at once on one GPU.

A CNN on digits (8x8 images, so each epoch is short and a trial's bookkeeping shows): the same
study (``--trials`` trials of ``--epochs`` epochs, ``max_parallel`` = the trials per GPU) is run
twice, by ``tuneboard worker --trials-per-gpu 1`` and then ``--trials-per-gpu K``, each on a
fresh embedded store (SQLite and the SQLAlchemy broker) in a temporary ``TUNEBOARD_HOME``. The
GPU's utilization (NVML's ``nvmlDeviceGetUtilizationRates``: the share of the last sample
period in which a kernel ran) is sampled every ``--interval-ms`` in a thread, from the first
trial's start to the study's end. Prints, for each, the GPU busy %, trials per minute and
epochs per second.

    python bench/gpu.py [--gpu 0] [--k 4] [--trials 8] [--epochs 20] [--interval-ms 100]

Needs ``nvidia-ml-py`` (in the ``worker`` extra) and a CUDA build of torch; without a GPU, or
without NVML, it says "no GPU: skipped" and exits 0.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from tuneboard.config import get_settings
from tuneboard.db import session_scope
from tuneboard.db.migrate import upgrade
from tuneboard.db.models import Study, Trial
from tuneboard.queue import configure_client
from tuneboard.studies import service
from tuneboard.teams import service as teams

try:
    import pynvml
except ImportError:  # the no-GPU path must run without nvidia-ml-py
    pynvml = None

ROOT = Path(__file__).resolve().parents[1]
STUDY_TIMEOUT_S = 3600


def spec(trials: int, epochs: int, parallel: int) -> dict[str, Any]:
    return {
        "name": f"gpu-cnn-x{parallel}",
        "objective": {"builtin": "classifier", "dataset": "digits", "model": "cnn",
                      "metric": "val_accuracy", "direction": "maximize", "max_epochs": epochs},
        "search_space": {
            "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
            "optimizer": {"type": "categorical", "choices": ["sgd", "adam", "adamw"]},
        },
        "fixed": {"batch_size": 64},
        "sampler": {"type": "random", "seed": 0},
        "pruner": {"type": "none"},
        "budget": {"n_trials": trials, "max_parallel": parallel, "max_retries": 0},
        "resources": {"device": "cuda"},
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python bench/gpu.py", description=__doc__.split("\n")[0])
    parser.add_argument("--gpu", type=int, default=0, help="NVML (PCI bus) index of the GPU")
    parser.add_argument("--k", type=int, default=4, help="trials at once in the second run")
    parser.add_argument("--trials", type=int, default=8, help="trials of each run's study")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of each trial")
    parser.add_argument("--interval-ms", type=float, default=100.0, help="NVML sampling period")
    args = parser.parse_args(argv)
    if args.gpu < 0:
        parser.error("--gpu must be 0 or more")
    if args.k < 2:
        parser.error("--k must be at least 2 (the first run is 1 trial per GPU)")
    if args.trials < args.k:
        parser.error(f"--trials must be at least --k ({args.k}), so that K trials run at once")
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if not 10 <= args.interval_ms <= 10_000:
        parser.error("--interval-ms must be between 10 and 10000")
    return args


def open_gpu(index: int) -> tuple[Any, str] | str:
    """The NVML handle and name of GPU ``index``, or why there is none."""
    if pynvml is None:
        return "nvidia-ml-py is not installed (pip install 'tuneboard[worker]')"
    try:
        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
        if index >= count:
            return f"NVML sees {count} GPU(s), none with index {index}"
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        return handle, pynvml.nvmlDeviceGetName(handle)
    except pynvml.NVMLError as err:
        return f"NVML: {err}"


class Sampler(threading.Thread):
    """Utilization of one GPU every ``interval_s``: (monotonic time, percent busy)."""

    def __init__(self, handle: Any, interval_s: float) -> None:
        super().__init__(daemon=True)
        self.handle, self.interval_s = handle, interval_s
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.interval_s):
            rates = pynvml.nvmlDeviceGetUtilizationRates(self.handle)
            self.samples.append((time.monotonic(), int(rates.gpu)))

    def busy(self, start: float, end: float) -> float:
        window = [gpu for at, gpu in self.samples if start <= at <= end]
        return sum(window) / len(window) if window else float("nan")


@dataclass
class Run:
    trials_per_gpu: int
    busy_pct: float
    trials_per_min: float
    epochs_per_s: float
    wall_s: float


def counts(url: str, study_id: int) -> tuple[str, int, int]:
    """The study's state, its trials started, and epochs run over its trials."""
    with session_scope(url) as session:
        state = session.scalar(select(Study.state).where(Study.id == study_id))
        started, epochs = session.execute(
            select(func.count(Trial.datetime_start), func.coalesce(func.sum(Trial.epochs_run), 0))
            .where(Trial.study_id == study_id)
        ).one()
    return str(state), int(started), int(epochs)


def run_once(args: argparse.Namespace, sampler: Sampler, trials_per_gpu: int) -> Run:
    home = Path(tempfile.mkdtemp(prefix=f"tb-gpu-{trials_per_gpu}-"))
    env = {**os.environ, "TUNEBOARD_HOME": str(home), "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
           "CUDA_VISIBLE_DEVICES": str(args.gpu)}
    for key in ("TUNEBOARD_DATABASE_URL", "TUNEBOARD_BROKER_URL"):
        env.pop(key, None)
    url = f"sqlite:///{home / 'tuneboard.db'}"
    os.environ.update({"TUNEBOARD_HOME": str(home), "TUNEBOARD_DATABASE_URL": url,
                       "TUNEBOARD_BROKER_URL": f"sqla+sqlite:///{home / 'broker.db'}"})
    get_settings.cache_clear()  # this process creates the study: it sends to this run's broker
    configure_client(get_settings())
    upgrade(url)
    with session_scope(url) as session:
        _, raw = teams.create_team(session, f"gpu-{uuid.uuid4().hex[:8]}")
        principal = teams.authenticate(session, raw)
    worker = subprocess.Popen(
        [sys.executable, "-m", "tuneboard.cli", "worker", "--no-reaper",
         "--trials-per-gpu", str(trials_per_gpu)],
        cwd=ROOT, env=env, start_new_session=True,
    )
    try:
        with session_scope(url) as session:
            study, _ = service.create_study(
                session, principal, spec(args.trials, args.epochs, trials_per_gpu))
            study_id = study.id
        deadline = time.monotonic() + STUDY_TIMEOUT_S
        first_start: float | None = None
        while True:
            state, started, epochs = counts(url, study_id)
            if first_start is None and started:
                first_start = time.monotonic()
            if state in ("completed", "failed", "cancelled"):
                break
            if worker.poll() is not None:
                raise SystemExit(f"the worker exited with {worker.returncode}")
            if time.monotonic() > deadline:
                raise SystemExit(f"the study did not finish within {STUDY_TIMEOUT_S}s")
            time.sleep(0.2)
        end = time.monotonic()
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(60)
    if state != "completed":
        raise SystemExit(f"the study ended {state}; see the worker's output above")
    start = first_start if first_start is not None else end
    wall = max(end - start, 1e-9)
    return Run(trials_per_gpu, sampler.busy(start, end), args.trials / wall * 60,
               epochs / wall, wall)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    gpu = open_gpu(args.gpu)
    if isinstance(gpu, str):
        print(f"no GPU: skipped ({gpu})")
        return 0
    handle, name = gpu
    sampler = Sampler(handle, args.interval_ms / 1000)
    sampler.start()
    try:
        runs = [run_once(args, sampler, n) for n in (1, args.k)]
    finally:
        sampler.stop.set()
        pynvml.nvmlShutdown()
    print(f"GPU {args.gpu}: {name}; digits CNN, {args.trials} trials of {args.epochs} epochs, "
          f"sampled every {args.interval_ms:g} ms")
    print(f"{'trials/GPU':>10}  {'GPU busy':>8}  {'trials/min':>10}  {'epochs/s':>8}  {'wall':>7}")
    for run in runs:
        print(f"{run.trials_per_gpu:>10}  {run.busy_pct:>7.1f}%  {run.trials_per_min:>10.2f}  "
              f"{run.epochs_per_s:>8.2f}  {run.wall_s:>6.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
