"""Celery configuration shared by the API (which only sends tasks, by name) and the workers.

The database is the source of truth; a message only says "look at trial N". Tasks are sent
after the transaction that created their rows commits (``enqueue_after_commit``), and the
reaper re-sends whatever the database says is owed, so a lost message costs a delay, not a trial.

That is also why the producer (``celery_client``) never waits long on the broker: it connects
and publishes with a timeout of ``TUNEBOARD_BROKER_PUBLISH_TIMEOUT_S`` and no retries, and after
a failure it sends nothing for ``TUNEBOARD_BROKER_PUBLISH_BACKOFF_S``. A broker that is down or
frozen (alive but not answering) costs a request at most one timeout, and the trials it owed wait
for the reaper.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import Celery
from sqlalchemy import event
from sqlalchemy.orm import Session

from tuneboard.config import Settings, get_settings

log = logging.getLogger(__name__)

RUN_TRIAL_TASK = "tuneboard.run_trial"
REAP_TASK = "tuneboard.reap"
ENSEMBLE_TASK = "tuneboard.ensemble"

_client: Celery | None = None
_client_lock = threading.Lock()
# The producer sends nothing before this (time.monotonic()): the last publish failed.
_paused_until = 0.0
_publish_backoff_s = 5.0


def celery_config(settings: Settings) -> dict[str, Any]:
    broker = settings.broker_url
    transport_options: dict[str, Any] = {}
    if broker.startswith("redis"):
        transport_options["visibility_timeout"] = settings.visibility_timeout_s
    elif broker.startswith("sqla+sqlite"):
        # kombu passes these straight to create_engine, so a polling_interval here would break
        # it (``make_celery`` sets the transport's class attribute instead).
        transport_options["connect_args"] = {"timeout": 30, "check_same_thread": False}
        transport_options["hide_parameters"] = True
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


def producer_config(settings: Settings) -> dict[str, Any]:
    """``celery_config`` for a process that only sends: every broker call bounded, no retries.

    Not for workers: a consumer's BRPOP waits longer than this timeout on purpose.
    """
    config = celery_config(settings)
    timeout = settings.broker_publish_timeout_s
    options = dict(config["broker_transport_options"])
    if settings.broker_url.startswith("redis"):
        options.update(socket_timeout=timeout, socket_connect_timeout=timeout)
    elif settings.broker_url.startswith("sqla+sqlite"):
        options["connect_args"] = {**options.get("connect_args", {}), "timeout": timeout}
    config.update(
        broker_transport_options=options,
        broker_connection_timeout=timeout,
        broker_connection_retry=False,
        task_publish_retry=False,
    )
    return config


def make_celery(settings: Settings, main: str = "tuneboard", *, producer: bool = False) -> Celery:
    """A Celery app on ``settings``' broker; ``producer``: bounded for sending only."""
    if settings.broker_url.startswith("sqla+"):
        from kombu.transport import sqlalchemy as kombu_sqla

        # The embedded broker polls once a second by default; the class attribute is the knob.
        kombu_sqla.Transport.polling_interval = settings.broker_polling_interval_s
    app = Celery(main)
    app.conf.update(producer_config(settings) if producer else celery_config(settings))
    return app


def celery_client() -> Celery:
    """The process-wide producer (API, CLI, services). Workers use their own app."""
    global _client
    with _client_lock:
        if _client is None:
            _client = _make_client(get_settings())
        return _client


def configure_client(settings: Settings) -> Celery:
    """Point the process-wide producer at ``settings``' broker (the API's app factory does)."""
    global _client
    with _client_lock:
        _client = _make_client(settings)
        return _client


def _make_client(settings: Settings) -> Celery:
    global _paused_until, _publish_backoff_s
    _paused_until, _publish_backoff_s = 0.0, settings.broker_publish_backoff_s
    return make_celery(settings, main="tuneboard-client", producer=True)


def send_run_trial(trial_id: int, queue: str, app: Celery | None = None) -> None:
    (app or celery_client()).send_task(RUN_TRIAL_TASK, args=[trial_id], queue=queue, retry=False)


def publish_paused() -> bool:
    """True while the producer holds back after a failed publish."""
    return time.monotonic() < _paused_until


def send_owed(trials: list[tuple[int, str]]) -> int:
    """Send ``run_trial`` for each (trial_id, queue); how many were sent. Never raises: at the
    first failure (and while paused after one) the rest are left to the reaper."""
    global _paused_until
    for sent, (trial_id, queue) in enumerate(trials):
        if publish_paused():
            log.warning("broker unavailable; %d trial(s) left to the reaper", len(trials) - sent)
            return sent
        try:
            send_run_trial(trial_id, queue)
        except Exception as err:  # the reaper re-sends what the database says is owed
            _paused_until = time.monotonic() + _publish_backoff_s
            log.warning("could not enqueue trial %s (%s: %s); %d trial(s) left to the reaper",
                        trial_id, type(err).__name__, err, len(trials) - sent)
            return sent
    return len(trials)


def enqueue_after_commit(session: Session, trials: list[tuple[int, str]]) -> None:
    """Send ``run_trial`` for each (trial_id, queue) once ``session`` commits; nothing on rollback.

    A failed send is logged, not raised (``send_owed``): the rows are committed, and the reaper
    re-dispatches waiting trials that no worker claimed.
    """
    if not trials:
        return
    pending: list[tuple[int, str]] = session.info.setdefault("tuneboard_enqueue", [])
    first = not pending
    pending.extend(trials)
    if not first:
        return

    def _after_commit(sess: Session) -> None:
        send_owed(sess.info.pop("tuneboard_enqueue", []))

    def _after_rollback(sess: Session, _previous_transaction: object) -> None:
        sess.info.pop("tuneboard_enqueue", None)

    event.listen(session, "after_commit", _after_commit, once=True)
    event.listen(session, "after_soft_rollback", _after_rollback, once=True)


def send_task_after_commit(session: Session, name: str, args: list[Any], queue: str) -> None:
    """Send the task ``name`` once ``session`` commits; nothing on rollback. A failed send is
    logged, not raised: the committed row records what is owed."""
    pending: list[tuple[str, list[Any], str]] = session.info.setdefault("tuneboard_tasks", [])
    first = not pending
    pending.append((name, args, queue))
    if not first:
        return

    def _after_commit(sess: Session) -> None:
        for task, task_args, task_queue in sess.info.pop("tuneboard_tasks", []):
            if publish_paused():
                log.warning("broker unavailable; %s%s not sent", task, task_args)
                continue
            try:
                celery_client().send_task(task, args=task_args, queue=task_queue, retry=False)
            except Exception as err:  # the row stays; asking again sends it
                log.warning("could not send %s%s (%s: %s)", task, task_args,
                            type(err).__name__, err)

    def _after_rollback(sess: Session, _previous_transaction: object) -> None:
        sess.info.pop("tuneboard_tasks", None)

    event.listen(session, "after_commit", _after_commit, once=True)
    event.listen(session, "after_soft_rollback", _after_rollback, once=True)
