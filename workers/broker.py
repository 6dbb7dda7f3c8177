"""What the workers ask the broker directly: queue creation and the number of ready messages."""

from __future__ import annotations

import logging
import time

from celery import Celery

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


def ready_messages(app: Celery, queue: str) -> int | None:
    """Messages waiting on ``queue`` (not those a worker holds); None when the broker cannot
    tell. A queue never declared has none."""
    try:
        # A pooled connection: kombu's SQLAlchemy channels never give their database
        # connection back, so a fresh one per call would drain the pool within 15 calls.
        with app.pool.acquire(block=True) as conn:
            return int(conn.default_channel.queue_declare(queue=queue, passive=True).message_count)
    except Exception as exc:
        if "404" in str(exc) or "NOT_FOUND" in str(exc).upper():
            return 0
        log.debug("cannot count messages on queue %s: %s", queue, exc)
        return None
