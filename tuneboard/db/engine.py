"""Engines and sessions. One engine per URL per process; commits happen at the edge
(a request, a task, a CLI command) through ``session_scope`` or the API's dependency."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_factories: dict[tuple[str, bool], sessionmaker[Session]] = {}

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY_OPTION = "tuneboard_read_only"


def normalize_url(url: str) -> str:
    """Accept the URLs people paste (postgres://, postgresql://) and pick the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_sqlite(url: str) -> bool:
    return normalize_url(url).startswith("sqlite")


def _configure_sqlite(engine: Engine) -> None:
    # WAL lets readers run beside the one writer; BEGIN IMMEDIATE takes the write lock at the
    # start of a transaction, so concurrent writers wait (busy timeout) instead of failing with
    # "database is locked" when a reader tries to upgrade.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Read-only sessions (see ``get_session_factory``) begin DEFERRED: under WAL they read a
        # snapshot without taking the write lock, so GETs never queue behind a writer.
        read_only = conn.get_execution_options().get(READ_ONLY_OPTION, False)
        conn.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        if ":memory:" in url or url.rstrip("/") == "sqlite:":
            raise ValueError("an in-memory SQLite database cannot be shared; use a file")
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def get_engine(url: str) -> Engine:
    url = normalize_url(url)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = create_db_engine(url)
        return engine


def get_session_factory(url: str, *, read_only: bool = False) -> sessionmaker[Session]:
    """Sessions on the URL's engine. ``read_only`` sessions must not write: on SQLite they do not
    take the write lock (elsewhere they are ordinary sessions)."""
    key = (normalize_url(url), read_only)
    with _lock:
        factory = _factories.get(key)
    if factory is None:
        engine = get_engine(url)
        bind = engine.execution_options(**{READ_ONLY_OPTION: True}) if read_only else engine
        factory = sessionmaker(bind, expire_on_commit=False)
        with _lock:
            factory = _factories.setdefault(key, factory)
    return factory


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A unit of work: commits when the block ends, rolls back when it raises."""
    session = get_session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dispose_engines() -> None:
    """Drop pooled connections, e.g. in a forked worker (connections don't survive a fork)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose(close=False)
