"""Real databases for tests: a fresh PostgreSQL database or SQLite file per test session,
built by the migrations users run, emptied after each test."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import sqlalchemy as sa

from tuneboard.db.base import Base
from tuneboard.db.engine import get_engine, is_sqlite
from tuneboard.db.migrate import upgrade

POSTGRES_ADMIN_URL = os.environ.get(
    "TUNEBOARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = [
    b for b in os.environ.get("TUNEBOARD_TEST_BACKENDS", "sqlite,postgresql").split(",") if b
]


def _admin_engine() -> sa.Engine:
    return sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


def create_database(backend: str, tmp_dir: Path, migrate: bool = True) -> str:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_dir / f'tb-{uuid.uuid4().hex[:8]}.db'}"
    elif backend == "postgresql":
        name = f"tb_test_{uuid.uuid4().hex[:12]}"
        with _admin_engine().connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    else:
        raise ValueError(f"unknown test backend {backend!r}")
    if migrate:
        upgrade(url)
    return url


def drop_database(url: str) -> None:
    get_engine(url).dispose()
    if is_sqlite(url):
        return
    name = url.rsplit("/", 1)[1]
    with _admin_engine().connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_database(url: str) -> None:
    """Delete every row. Ids keep counting up (no RESTART IDENTITY / sqlite_autoincrement), as in
    production, so process-wide caches keyed by id never see a reused id."""
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with get_engine(url).begin() as conn:
        if is_sqlite(url):
            for table in tables:
                conn.exec_driver_sql(f'DELETE FROM "{table}"')
        else:
            conn.exec_driver_sql("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE")
