"""What the workers ask the broker directly."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from pathlib import Path

from tests.workers.conftest import Stack
from tuneboard.queue import celery_client, send_run_trial
from workers.broker import declare_queues, ready_messages


def test_ready_messages_counts_and_reuses_connections(
    tmp_path: Path, client_env: Callable[[Stack], None]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    client_env(Stack(db_url="sqlite:///unused.db", broker_url=f"sqla+sqlite:///{home / 'b.db'}",
                     home=home))
    app = celery_client()
    declare_queues(app, ["default", "other"])
    assert ready_messages(app, "default") == 0
    send_run_trial(1, "default")
    assert ready_messages(app, "default") == 1 and ready_messages(app, "other") == 0
    assert ready_messages(app, "never-declared") == 0
    # kombu's SQLAlchemy channels keep their database connection: a fresh connection per call
    # would drain the pool (15) and the 16th call would wait 30 s for one.
    gc.disable()
    try:
        started = time.monotonic()
        for _ in range(40):
            assert ready_messages(app, "default") == 1
        assert time.monotonic() - started < 10
    finally:
        gc.enable()
