"""Worker stacks on the fault tests' own servers: real Celery workers and a reaper (as in
``tests/workers``) on a PostgreSQL cluster and a Redis of the test's own, with settings of the
test's choosing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.workers.conftest import Stack, Studies
from tuneboard.db import session_scope
from tuneboard.teams import service as teams


@dataclass
class FaultStack(Stack):
    """A :class:`Stack` whose processes also get ``settings`` (``TUNEBOARD_*`` variables)."""

    settings: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, **self.settings}


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
