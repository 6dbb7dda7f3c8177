"""Counting what the database really returns: rows fetched from the driver's cursors and the
statements sent, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import event

from tuneboard.db.engine import get_engine


@dataclass
class Reads:
    rows: int = 0
    statements: list[str] = field(default_factory=list)


_current: list[Reads] = []


def _count(rows: Any) -> Any:
    if _current and rows is not None:
        _current[-1].rows += len(rows) if isinstance(rows, list) else 1
    return rows


class _SqliteCursor(sqlite3.Cursor):
    def fetchone(self) -> Any:
        return _count(super().fetchone())

    def fetchmany(self, size: int | None = None) -> list[Any]:
        return _count(super().fetchmany(self.arraysize if size is None else size))

    def fetchall(self) -> list[Any]:
        return _count(super().fetchall())


class _SqliteConnection(sqlite3.Connection):
    def cursor(self, factory: Any = _SqliteCursor) -> Any:
        return super().cursor(factory)


class _PostgresCursor(psycopg.Cursor[Any]):
    def fetchone(self) -> Any:
        return _count(super().fetchone())

    def fetchmany(self, size: int = 0) -> list[Any]:
        return _count(super().fetchmany(size))

    def fetchall(self) -> list[Any]:
        return _count(super().fetchall())


def _counting_cursors(dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
    if dialect.name == "sqlite":
        params["factory"] = _SqliteConnection
    else:
        params["cursor_factory"] = _PostgresCursor


def _record_statement(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    if _current and not statement.startswith("BEGIN"):  # SQLite's BEGIN IMMEDIATE
        _current[-1].statements.append(statement)


@contextmanager
def counting_reads(url: str) -> Iterator[Reads]:
    """Rows fetched and statements sent through ``url``'s engine inside the block."""
    engine = get_engine(url)
    engine.dispose()  # new connections, made with counting cursors
    event.listen(engine, "do_connect", _counting_cursors)
    event.listen(engine, "before_cursor_execute", _record_statement)
    _current.append(Reads())
    try:
        yield _current[-1]
    finally:
        _current.pop()
        event.remove(engine, "before_cursor_execute", _record_statement)
        event.remove(engine, "do_connect", _counting_cursors)
        engine.dispose()
