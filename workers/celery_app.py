"""The workers' Celery app: ``celery -A workers.celery_app worker -Q default,gpu ...``.

Configuration is :func:`tuneboard.queue.make_celery`'s (JSON only, late acks, requeue on a lost
worker, prefetch 1). A queue is any name a study gives in ``resources.queue``; queues are created
when first used, and a worker consumes those named by ``-Q``. With no settings at all the broker
is the embedded one (kombu's SQLAlchemy transport on SQLite under ``TUNEBOARD_HOME``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Celery
from celery.signals import worker_init, worker_process_init

from tuneboard.config import get_settings
from tuneboard.db import dispose_engines
from tuneboard.queue import make_celery

__all__ = ["app", "declare_queues"]

log = logging.getLogger(__name__)

_settings = get_settings()
_settings.home.mkdir(parents=True, exist_ok=True)

app = make_celery(_settings, main="tuneboard-worker")
app.conf.include = ["workers.tasks"]


def declare_queues(celery: Celery, names: list[str], attempts: int = 10) -> None:
    """Create ``names`` on the broker. kombu's SQLAlchemy transport creates a queue with a
    check-then-insert that two processes starting together can both lose (a unique-constraint
    error); a fresh connection then finds the queue the other one created."""
    for attempt in range(1, attempts + 1):
        try:
            with celery.connection_for_write() as conn:
                for name in names:
                    conn.default_channel.queue_declare(queue=name)
            return
        except Exception as exc:
            if attempt == attempts:
                raise
            log.debug("declaring queues %s: %s; trying again", names, exc)
            time.sleep(0.1 * attempt)


@worker_init.connect
def _declare_embedded_queues(sender: Any, **_: Any) -> None:
    if app.conf.broker_url.startswith("sqla+"):
        declare_queues(app, list(sender.app.amqp.queues))


@worker_process_init.connect
def _fresh_connections(**_: Any) -> None:
    # Pooled connections inherited through fork are shared with the parent: never reuse them.
    dispose_engines()
