"""Live uvicorn servers for the tests that need real HTTP: the app in a thread of the test process
(``serve``), or ``api.main:app`` in a process of its own (``serve_process``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A port nothing listens on now (another process may take it before the caller does)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """The app served on 127.0.0.1 until the block ends; yields its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def serve_process(
    database_url: str, broker_url: str, home: Path, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """``uvicorn api.main:app`` in its own process on ``database_url`` and ``broker_url``, with
    ``home`` as its TUNEBOARD_HOME (its output in ``home/uvicorn.log``) and ``env`` over this
    process's environment, until the block ends; yields its base URL once ``/healthz``
    answers."""
    log_path = home / "uvicorn.log"
    env = {"TUNEBOARD_DATABASE_URL": database_url, "TUNEBOARD_BROKER_URL": broker_url,
           "TUNEBOARD_HOME": str(home), "TUNEBOARD_ENVIRONMENT": "test", **(env or {})}
    port = free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
