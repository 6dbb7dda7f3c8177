"""Worker stacks on the fault tests' own servers: real Celery workers and a reaper (as in
``tests/workers``) on a PostgreSQL cluster and a Redis of the test's own, with settings of the
test's choosing."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.live_server import free_port
from tests.workers.conftest import Process, Stack, Studies, wait_until
from tuneboard.db import session_scope
from tuneboard.teams import service as teams


@dataclass
class FaultStack(Stack):
    """A :class:`Stack` whose processes also get ``settings`` (``TUNEBOARD_*`` variables)."""

    settings: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, **self.settings}

    def start_api(self) -> tuple[Process, str]:
        """``uvicorn api.main:app`` on a free port, in a process of the stack's (a test may
        SIGKILL it; teardown kills it); returns it and its base URL once ``/healthz`` answers."""
        port = free_port()
        proc = self._start("api", [sys.executable, "-m", "uvicorn", "api.main:app",
                                   "--host", "127.0.0.1", "--port", str(port),
                                   "--log-level", "warning"])
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            assert proc.popen.poll() is None, f"the API exited:\n{proc.tail()}"
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, timeout=60, message=f"the API to start:\n{proc.tail()}")
        return proc, url


def fault_stack(
    db_url: str, broker_url: str, home: Path, configure: Callable[[Stack], None], **settings: str
) -> FaultStack:
    """A stack (no process started yet) that this test process is pointed at too."""
    home.mkdir(parents=True, exist_ok=True)
    stack = FaultStack(db_url=db_url, broker_url=broker_url, home=home,
                       settings={f"TUNEBOARD_{k.upper()}": v for k, v in settings.items()})
    configure(stack)
    return stack


def member_studies(db_url: str) -> Studies:
    """Create and read studies as a member of a fresh team."""
    with session_scope(db_url) as session:
        _, raw = teams.create_team(session, f"team-{uuid.uuid4().hex[:8]}")
        principal = teams.authenticate(session, raw)
    return Studies(db_url=db_url, principal=principal)
