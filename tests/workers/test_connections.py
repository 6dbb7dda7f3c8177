"""How many PostgreSQL connections a worker process holds while a study runs: never more than
its pool allows (``TUNEBOARD_DB_POOL_SIZE`` + ``TUNEBOARD_DB_MAX_OVERFLOW``), counted in
``pg_stat_activity`` by the ``application_name`` each kind of process sets."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa

from tests.workers.conftest import Stack, Studies, steps_spec
from tuneboard.db.engine import is_sqlite


@dataclass
class PooledStack(Stack):
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, **self.settings}


def _watch(db_url: str, stop: threading.Event, peaks: Counter[str]) -> None:
    """Keep the highest number of connections to ``db_url``'s database per application_name."""
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    with engine.connect() as conn:
        while not stop.is_set():
            rows = conn.execute(sa.text(
                "SELECT application_name, count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "GROUP BY application_name"
            )).all()
            conn.commit()
            for name, count in rows:
                peaks[name] = max(peaks[name], count)
            time.sleep(0.05)
    engine.dispose()


def test_a_worker_process_holds_no_more_connections_than_its_pool(
    db_url: str, own_stack: Stack, client_env: Callable[[Stack], None], studies: Studies,
) -> None:
    pool_size, max_overflow = 1, 1
    if is_sqlite(db_url):
        pytest.skip("connections are PostgreSQL's")
    stack = PooledStack(db_url=own_stack.db_url, broker_url=own_stack.broker_url,
                        home=own_stack.home,
                        settings={"TUNEBOARD_DB_POOL_SIZE": str(pool_size),
                                  "TUNEBOARD_DB_MAX_OVERFLOW": str(max_overflow)})
    client_env(stack)
    peaks: Counter[str] = Counter()
    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(db_url, stop, peaks), daemon=True)
    try:
        worker = stack.start_worker("pooled", queues="pooled", concurrency=1)
        stack.wait_ready(worker, stack.start_reaper())
        watcher.start()
        sid = studies.create(steps_spec(n_trials=3, queue="pooled", steps=8, sleep_s=0.1))
        assert studies.wait_finished(sid, stack, timeout=90).state == "completed"
    finally:
        stop.set()
        watcher.join(10)
        stack.stop_all()
    # One worker process ran the trials with its trial, report writer and heartbeat threads, and
    # held no more than its pool's cap; the reaper is a process of its own kind.
    assert 1 <= peaks["tuneboard-worker"] <= pool_size + max_overflow, dict(peaks)
    assert peaks["tuneboard-reaper"] >= 1, dict(peaks)
