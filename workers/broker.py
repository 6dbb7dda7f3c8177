"""What the workers ask the broker directly: queue creation and the number of ready messages."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from celery import Celery
from kombu import Connection

__all__ = ["declare_queues", "ready_messages"]

log = logging.getLogger(__name__)


def declare_queues(app: Celery, names: list[str], attempts: int = 10) -> None:
    """Create ``names`` on the broker. kombu's SQLAlchemy transport creates a queue with a
    check-then-insert that two processes starting together can both lose (a unique-constraint
    error); a fresh connection then finds the queue the other one created."""
    for attempt in range(1, attempts + 1):
        try:
            with app.pool.acquire(block=True) as conn:
                for name in names:
                    conn.default_channel.queue_declare(queue=name)
            return
        except Exception as exc:
            if attempt == attempts:
                raise
            log.debug("declaring queues %s: %s; trying again", names, exc)
            time.sleep(0.1 * attempt)


# One connection and channel per app and process, held: counting is asked once per trial, and
# a pooled kombu connection whose channel raised (as a passive declare of an empty Redis queue
# does) comes back unconnected, so each count connected afresh: 3-6 ms on Redis. kombu's
# SQLAlchemy channels, besides, never give their database connection back.
_held: dict[tuple[int, int], tuple[Connection, Any]] = {}
_held_lock = threading.Lock()


def ready_messages(app: Celery, queue: str) -> int | None:
    """Messages waiting on ``queue`` (not those a worker holds); None when the broker cannot
    tell. A queue never declared has none."""
    key = (id(app), os.getpid())  # a forked pool child connects on its own
    with _held_lock:
        try:
            held = _held.get(key)
            if held is None:
                connection = app.connection_for_read()
                held = _held[key] = (connection, connection.default_channel)
            return int(held[1].queue_declare(queue=queue, passive=True).message_count)
        except Exception as exc:
            # Not found is an answer, and the channel stays good: on Redis an empty queue has no
            # key, so a passive declare of it is "not found".
            if "404" in str(exc) or "NOT_FOUND" in str(exc).upper():
                return 0
            _drop(key)  # the next count connects afresh
            log.debug("cannot count messages on queue %s: %s", queue, exc)
            return None


def _drop(key: tuple[int, int]) -> None:
    held = _held.pop(key, None)
    if held is not None:
        try:
            held[0].release()
        except Exception as exc:  # a broken connection may fail to close; it is dropped anyway
            log.debug("closing the broker connection: %s", exc)
