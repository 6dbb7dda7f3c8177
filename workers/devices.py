"""Which device a trial runs on, and which Celery worker processes a host runs.

A GPU host runs one Celery worker process per visible GPU (``CUDA_VISIBLE_DEVICES`` set to that
one GPU), each with ``--trials-per-gpu`` pool processes (default 1), consuming ``gpu,default``:
a GPU host also takes work that asked for no particular queue. A host without a GPU runs one
worker process with ``--concurrency`` pool processes consuming ``default``.

``python -m workers.devices [options]`` prints that plan as JSON; ``tuneboard worker`` and
``tuneboard up`` start what it prints, so the CLI never imports torch or ``workers``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict

import torch

from tuneboard.processes import Child

__all__ = [
    "CPU_QUEUES",
    "GPU_QUEUES",
    "celery_worker_argv",
    "default_cpu_concurrency",
    "describe_device",
    "plan_worker_processes",
    "select_device",
    "visible_gpus",
]

CPU_QUEUES: tuple[str, ...] = ("default",)
GPU_QUEUES: tuple[str, ...] = ("gpu", "default")
DEVICE_LABEL_MAX = 50


def visible_gpus() -> list[str]:
    """The ``CUDA_VISIBLE_DEVICES`` entry of each GPU torch can see (``["0", "1"]`` by default)."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if listed:
        return listed[:count]
    return [str(i) for i in range(count)]


def default_cpu_concurrency() -> int:
    cores = os.cpu_count() or 1
    return max(1, min(4, cores // 2))


def celery_worker_argv(name: str, concurrency: int, queues: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker",
        "-P", "prefork", "-c", str(concurrency), "-Q", ",".join(queues),
        "-n", f"{name}@%h", "-l", "INFO",
        "--without-heartbeat", "--without-mingle", "--without-gossip",
    ]


def plan_worker_processes(
    *,
    gpus: list[str],
    concurrency: int | None = None,
    queues: list[str] | None = None,
    trials_per_gpu: int | None = None,
) -> list[Child]:
    """The Celery worker processes for a host with ``gpus`` (``CUDA_VISIBLE_DEVICES`` entries)."""
    cores = os.cpu_count() or 1
    if not gpus:
        n = concurrency or default_cpu_concurrency()
        env = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(max(1, cores // n)))}
        argv = celery_worker_argv("cpu", n, list(queues or CPU_QUEUES))
        return [Child(name="worker-cpu", argv=argv, env=env)]
    per_gpu = trials_per_gpu or 1
    threads = os.environ.get("OMP_NUM_THREADS", str(max(1, cores // (len(gpus) * per_gpu))))
    return [
        Child(
            name=f"worker-gpu{gpu}",
            argv=celery_worker_argv(f"gpu{gpu}", per_gpu, list(queues or GPU_QUEUES)),
            env={"CUDA_VISIBLE_DEVICES": gpu, "OMP_NUM_THREADS": threads},
        )
        for gpu in gpus
    ]


def select_device(requested: str | None) -> str:
    """The torch device for a trial: ``cuda`` when asked for (or ``auto``) and present."""
    want = (requested or "auto").lower()
    if want == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda" if want in ("auto", "cuda", "gpu") else want
    if want == "auto":
        return "cpu"
    raise RuntimeError(f"resources.device={requested!r} but this worker has no GPU")


def describe_device(device: str) -> str:
    """What ``Trial.device`` records, e.g. ``cpu`` or ``cuda:3 (NVIDIA H100 80GB HBM3)``; the
    index is the host's (``CUDA_VISIBLE_DEVICES``), not the process-local one."""
    dev = torch.device(device)
    if dev.type != "cuda":
        return dev.type
    local = dev.index if dev.index is not None else torch.cuda.current_device()
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    host_index = listed[local] if local < len(listed) else str(local)
    label = f"cuda:{host_index} ({torch.cuda.get_device_name(local)})"
    return label[:DEVICE_LABEL_MAX]


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workers.devices", description=__doc__)
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--queues", type=lambda s: [q for q in s.split(",") if q])
    parser.add_argument("--trials-per-gpu", type=int)
    args = parser.parse_args(argv)
    plan = plan_worker_processes(
        gpus=visible_gpus(),
        concurrency=args.concurrency,
        queues=args.queues,
        trials_per_gpu=args.trials_per_gpu,
    )
    json.dump([asdict(p) for p in plan], sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    _main()
