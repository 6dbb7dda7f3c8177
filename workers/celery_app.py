"""The workers' Celery app: ``celery -A workers.celery_app worker -Q default,gpu ...``.

Configuration is :func:`tuneboard.queue.make_celery`'s (JSON only, late acks, requeue on a lost
worker, prefetch 1). A queue is any name a study gives in ``resources.queue``; queues are created
when first used, and a worker consumes those named by ``-Q``. With no settings at all the broker
is the embedded one (kombu's SQLAlchemy transport on SQLite under ``TUNEBOARD_HOME``).
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_init, worker_process_init

from tuneboard.config import get_settings
from tuneboard.db import dispose_engines, set_application_name
from tuneboard.queue import make_celery
from workers.broker import declare_queues

__all__ = ["app"]

_settings = get_settings()
set_application_name("tuneboard-worker")
_settings.home.mkdir(parents=True, exist_ok=True)

app = make_celery(_settings, main="tuneboard-worker")
app.conf.include = ["workers.tasks"]


@worker_init.connect
def _declare_embedded_queues(sender: Any, **_: Any) -> None:
    # kombu's SQLAlchemy transport cannot create a queue from two processes at once.
    if app.conf.broker_url.startswith("sqla+"):
        declare_queues(app, list(sender.app.amqp.queues))


@worker_process_init.connect
def _fresh_connections(**_: Any) -> None:
    # Pooled connections inherited through fork are shared with the parent: never reuse them.
    dispose_engines()
