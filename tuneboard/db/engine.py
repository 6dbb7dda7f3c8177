"""Engines and sessions. One engine per URL per process; commits happen at the edge
(a request, a task, a CLI command) through ``session_scope`` or the API's dependency."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from tuneboard.config import get_settings

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_factories: dict[tuple[str, bool, bool], sessionmaker[Session]] = {}

SQLITE_BUSY_TIMEOUT_MS = 30_000
# A pooled connection idle for longer is pinged before it is handed out (see ``_ping_when_idle``).
PING_IDLE_S = 1.0
# What PostgreSQL shows as each connection's application_name (pg_stat_activity), set by each
# process at its start: tuneboard-api, tuneboard-worker, tuneboard-reaper.
_application_name = "tuneboard"
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
    """An engine whose errors and logs never show a statement's parameters: they carry API key
    hashes, parameters and notes, and database errors are logged."""
    url = normalize_url(url)
    kwargs["hide_parameters"] = True
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
    ping = kwargs.pop("pool_pre_ping", True)
    connect_args = kwargs.setdefault("connect_args", {})
    if get_settings().db_pgbouncer:
        # PgBouncer in transaction mode may hand the next transaction another server connection,
        # one without the statements psycopg prepared on this one.
        connect_args.setdefault("prepare_threshold", None)
    engine = create_engine(url, **kwargs)
    if ping:
        _ping_when_idle(engine)

    @event.listens_for(engine, "do_connect")
    def _name_the_connection(_dialect: Any, _record: Any, _args: Any, cparams: Any) -> None:
        cparams.setdefault("application_name", _application_name)

    return engine


def _ping_when_idle(engine: Engine) -> None:
    """``pool_pre_ping``, for connections idle longer than ``PING_IDLE_S``: a ping is a server
    transaction of its own, and pinging at every checkout doubled a busy worker's transactions.
    A connection back in use within the second is as alive as a ping could show; one that broke
    meanwhile fails its statement, which invalidates the pool (and the worker tries again)."""

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def _used(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info["used_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("used_at", 0.0) < PING_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(str(exc)) from exc  # the pool connects afresh


def set_application_name(name: str) -> None:
    """Name this process's PostgreSQL connections (``application_name``), so that
    ``pg_stat_activity`` shows which kind of process holds each; connections opened after the
    call carry it."""
    global _application_name
    _application_name = name


def describe_db_error(exc: BaseException) -> str:
    """A database error fit for a log line: its kind, SQLSTATE and the server's primary message.

    Never the statement's parameters (hidden by every engine here, see ``create_db_engine``) nor
    the server's DETAIL, which quotes row values ("Key (key_hash)=(...) already exists").
    """
    orig = getattr(exc, "orig", None) or exc
    diag = getattr(orig, "diag", None)
    message = getattr(diag, "message_primary", None) or next(iter(str(orig).splitlines()), "")
    sqlstate = getattr(orig, "sqlstate", None)
    kind = type(exc).__name__ + (f" [{sqlstate}]" if sqlstate else "")
    return f"{kind}: {message}" if message else kind


def _pool_options(url: str) -> dict[str, Any]:
    """The cap on each process's connections to PostgreSQL (SQLite's pool is its own)."""
    if is_sqlite(url):
        return {}
    settings = get_settings()
    return {"pool_size": settings.db_pool_size, "max_overflow": settings.db_max_overflow}


def get_engine(url: str) -> Engine:
    url = normalize_url(url)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = create_db_engine(url, **_pool_options(url))
        return engine


def get_session_factory(
    url: str, *, read_only: bool = False, autocommit: bool = False
) -> sessionmaker[Session]:
    """Sessions on the URL's engine. ``read_only`` sessions must not write: on SQLite they do not
    take the write lock (elsewhere they are ordinary sessions). ``autocommit`` (read-only too):
    on a server database each statement is its own transaction, with no BEGIN or COMMIT round
    trip around it, for a caller that makes one read (a request's authentication); on SQLite,
    whose transactions cost no round trip, it is ``read_only``."""
    read_only = read_only or autocommit
    autocommit = autocommit and not is_sqlite(url)
    key = (normalize_url(url), read_only, autocommit)
    with _lock:
        factory = _factories.get(key)
    if factory is None:
        engine = get_engine(url)
        options: dict[str, object] = {READ_ONLY_OPTION: True} if read_only else {}
        if autocommit:
            options["isolation_level"] = "AUTOCOMMIT"
        bind = engine.execution_options(**options) if options else engine
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
