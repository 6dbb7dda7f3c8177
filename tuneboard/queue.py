"""Celery configuration shared by the API (which only sends tasks, by name) and the workers.

The database is the source of truth; a message only says "look at trial N". Tasks are sent
after the transaction that created their rows commits (``enqueue_after_commit``), and the
reaper re-sends whatever the database says is owed, so a lost message costs a delay, not a trial.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery
from sqlalchemy import event
from sqlalchemy.orm import Session

from tuneboard.config import Settings, get_settings

log = logging.getLogger(__name__)

RUN_TRIAL_TASK = "tuneboard.run_trial"
REAP_TASK = "tuneboard.reap"

_client: Celery | None = None
_client_lock = threading.Lock()


def celery_config(settings: Settings) -> dict[str, Any]:
    broker = settings.broker_url
    transport_options: dict[str, Any] = {}
    if broker.startswith("redis"):
        transport_options["visibility_timeout"] = settings.visibility_timeout_s
    elif broker.startswith("sqla+sqlite"):
        # kombu passes these straight to create_engine (design note 9): no polling_interval here.
        transport_options["connect_args"] = {"timeout": 30, "check_same_thread": False}
    return {
        "broker_url": broker,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "result_backend": None,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_default_queue": "default",
        "task_create_missing_queues": True,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
    }


def make_celery(settings: Settings, main: str = "tuneboard") -> Celery:
    if settings.broker_url.startswith("sqla+"):
        from kombu.transport import sqlalchemy as kombu_sqla

        # The embedded broker polls once a second by default; the class attribute is the knob.
        kombu_sqla.Transport.polling_interval = settings.broker_polling_interval_s
    app = Celery(main)
    app.conf.update(celery_config(settings))
    return app


def celery_client() -> Celery:
    """The process-wide producer (API, CLI, services). Workers use their own app."""
    global _client
    with _client_lock:
        if _client is None:
            _client = make_celery(get_settings(), main="tuneboard-client")
        return _client


def configure_client(settings: Settings) -> Celery:
    """Point the process-wide producer at ``settings``' broker (the API's app factory does)."""
    global _client
    with _client_lock:
        _client = make_celery(settings, main="tuneboard-client")
        return _client


def send_run_trial(trial_id: int, queue: str, app: Celery | None = None) -> None:
    (app or celery_client()).send_task(RUN_TRIAL_TASK, args=[trial_id], queue=queue)


def enqueue_after_commit(session: Session, trials: list[tuple[int, str]]) -> None:
    """Send ``run_trial`` for each (trial_id, queue) once ``session`` commits; nothing on rollback.

    A failed send is logged, not raised: the rows are committed, and the reaper re-dispatches
    waiting trials that no worker claimed.
    """
    if not trials:
        return
    pending: list[tuple[int, str]] = session.info.setdefault("tuneboard_enqueue", [])
    first = not pending
    pending.extend(trials)
    if not first:
        return

    def _after_commit(sess: Session) -> None:
        owed = sess.info.pop("tuneboard_enqueue", [])
        for trial_id, queue in owed:
            try:
                send_run_trial(trial_id, queue)
            except Exception:  # the reaper re-sends what the database says is owed
                log.exception("could not enqueue trial %s; the reaper will retry", trial_id)

    def _after_rollback(sess: Session) -> None:
        sess.info.pop("tuneboard_enqueue", None)

    event.listen(session, "after_commit", _after_commit, once=True)
    event.listen(session, "after_soft_rollback", _after_rollback, once=True)
