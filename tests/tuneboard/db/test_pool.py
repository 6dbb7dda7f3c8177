"""Each process's pool on PostgreSQL: capped by TUNEBOARD_DB_POOL_SIZE + TUNEBOARD_DB_MAX_OVERFLOW
(a thread past the cap waits for a connection), and named by the process's application_name."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tuneboard.config import get_settings
from tuneboard.db import engine as engine_module
from tuneboard.db import get_engine, is_sqlite, set_application_name


@pytest.fixture
def pg_url(db_url: str) -> str:
    if is_sqlite(db_url):
        pytest.skip("the pool cap is PostgreSQL's")
    return db_url


@pytest.fixture
def capped(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TUNEBOARD_DB_POOL_SIZE", "1")
    monkeypatch.setenv("TUNEBOARD_DB_MAX_OVERFLOW", "1")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _connections(url: str, name: str) -> int:
    watcher = sa.create_engine(url, poolclass=sa.NullPool)
    with watcher.connect() as conn:
        count: int = conn.execute(
            sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
            {"name": name},
        ).scalar_one()
    watcher.dispose()
    return count


def test_a_thread_past_the_cap_waits_for_a_connection(pg_url: str, capped: None) -> None:
    name = f"tb-pool-{uuid.uuid4().hex[:8]}"
    # A URL of its own: an engine built now, under the capped settings.
    engine = get_engine(f"{pg_url}?application_name={name}")
    first, second = engine.connect(), engine.connect()
    third_connected = threading.Event()

    def third() -> None:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
            third_connected.set()

    thread = threading.Thread(target=third, daemon=True)
    thread.start()
    try:
        assert not third_connected.wait(1.0), "a third connection was opened past the cap"
        assert _connections(pg_url, name) == 2
        first.close()
        assert third_connected.wait(10), "the waiting thread never got the freed connection"
        assert _connections(pg_url, name) == 2
    finally:
        first.close()
        second.close()
        thread.join(10)
        engine.dispose()


def test_connections_carry_the_process_kind(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kind = f"tuneboard-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(engine_module, "_application_name", "tuneboard")
    set_application_name(kind)
    engine = get_engine(pg_url)
    engine.dispose()  # the next connection is a new one, named now
    with engine.connect() as conn:
        assert conn.execute(sa.text("SHOW application_name")).scalar_one() == kind
    engine.dispose()
