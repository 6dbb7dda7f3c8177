"""Child processes of ``tuneboard up`` and ``tuneboard worker``, started by module path.

Each child runs in a process group of its own, so that a terminal's Ctrl-C reaches only the
supervisor, which then stops every child the same way: SIGTERM to the child (Celery's warm
shutdown, uvicorn's graceful one), SIGKILL to its whole group after a timeout or at a second
Ctrl-C. When one child exits on its own, the others are stopped too: a half-running service is
worse than none.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

__all__ = ["Child", "plan_workers", "reaper_child", "run_children", "uvicorn_child"]

STOP_TIMEOUT_S = 15.0
_POLL_S = 0.2
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Child:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)


def uvicorn_child(host: str, port: int) -> Child:
    argv = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", host, "--port", str(port)]
    return Child(name="api", argv=argv)


def reaper_child() -> Child:
    return Child(name="reaper", argv=[sys.executable, "-m", "workers.reaper"])


def plan_workers(
    *, concurrency: int | None, queues: str | None, trials_per_gpu: int | None
) -> list[Child]:
    """The Celery worker processes this host should run, as ``workers.devices`` decides them
    (in a process of its own: deciding needs torch, which the CLI does not import)."""
    if importlib.util.find_spec("torch") is None:
        # The slim API image installs Tuneboard without torch; say so instead of a traceback.
        raise SystemExit(
            "tuneboard: workers run trials with torch, which is not installed here; install the "
            "build of torch for this host, then: pip install 'tuneboard[worker]'"
        )
    argv = [sys.executable, "-m", "workers.devices"]
    if concurrency is not None:
        argv += ["--concurrency", str(concurrency)]
    if queues:
        argv += ["--queues", queues]
    if trials_per_gpu is not None:
        argv += ["--trials-per-gpu", str(trials_per_gpu)]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    plan: list[dict[str, Any]] = json.loads(out)
    return [Child(name=p["name"], argv=list(p["argv"]), env=dict(p["env"])) for p in plan]


def _die_with_parent() -> None:
    # Linux only: a child is sent SIGTERM if the supervisor itself is killed.
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _start(child: Child, env: dict[str, str]) -> subprocess.Popen[bytes]:
    print(f"tuneboard: starting {child.name}: {' '.join(child.argv[1:])}", file=sys.stderr)
    return subprocess.Popen(
        child.argv,
        env={**os.environ, **env, **child.env},
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def run_children(
    children: Sequence[Child], *, env: dict[str, str] | None = None,
    stop_timeout_s: float = STOP_TIMEOUT_S,
) -> int:
    """Run ``children`` until SIGINT/SIGTERM or until one exits; then stop them all.

    Returns 0 after a requested stop, else the exit code of the child that ended first.
    """
    signals: list[int] = []

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        signals.append(signum)

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    procs: list[tuple[Child, subprocess.Popen[bytes]]] = []
    code = 0
    try:
        for child in children:
            procs.append((child, _start(child, env or {})))
        while not signals:
            ended = [(c, p) for c, p in procs if p.poll() is not None]
            if ended:
                child, proc = ended[0]
                code = proc.returncode or 1
                print(f"tuneboard: {child.name} exited with {proc.returncode}; stopping",
                      file=sys.stderr)
                break
            time.sleep(_POLL_S)
    finally:
        _stop_all(procs, signals, stop_timeout_s)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def _stop_all(
    procs: list[tuple[Child, subprocess.Popen[bytes]]], signals: list[int], timeout_s: float
) -> None:
    seen = len(signals)
    for _, proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the leader only: Celery stops its own pool
    deadline = time.monotonic() + timeout_s
    while any(p.poll() is None for _, p in procs):
        if time.monotonic() > deadline or len(signals) > seen:
            break
        time.sleep(_POLL_S)
    for child, proc in procs:
        if proc.poll() is None:
            print(f"tuneboard: {child.name} did not stop; killing it", file=sys.stderr)
            _signal_group(proc, signal.SIGKILL)
        proc.wait()
