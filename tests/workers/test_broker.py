"""What the workers ask the broker directly."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from pathlib import Path

import redis
from celery import Celery

from tests.workers.conftest import REDIS_URL, Stack
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


def test_counting_a_redis_queue_keeps_one_connection_also_when_the_queue_is_empty() -> None:
    """On Redis an empty queue has no key, so its passive declare says "not found": that is an
    answer (0), and the held connection stays; it used to be dropped and made afresh for every
    count, one count per trial."""
    app = Celery(broker=REDIS_URL)
    server = redis.Redis.from_url(REDIS_URL)
    server.delete("tb-count-test")
    try:
        assert ready_messages(app, "tb-count-test") == 0  # connects
        before = server.info("stats")["total_connections_received"]
        for _ in range(20):
            assert ready_messages(app, "tb-count-test") == 0
        server.lpush("tb-count-test", "{}")  # what kombu's Redis transport keeps a message in
        assert ready_messages(app, "tb-count-test") == 1
        assert server.info("stats")["total_connections_received"] == before
    finally:
        server.delete("tb-count-test")
        app.close()
