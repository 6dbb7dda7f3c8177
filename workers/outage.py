"""Riding out a database outage in a worker.

A running trial's writes (its reports, its heartbeat, its outcome) meet a database that restarts,
fails over or drops connections now and then. Such a blip must not cost the trial: each write
is a unit of work that is tried again, with backoff, for as long as the outage lasts up to
``TUNEBOARD_DB_OUTAGE_S``. Connections broken by the outage are dropped by SQLAlchemy when a
statement on them fails (the pool is invalidated), and the engine pings a pooled connection
idle for more than a second before it hands it out, so a retry after the database is back
connects afresh.

Only a longer outage fails the trial, with :class:`DatabaseOutage`, whose message is the
database's error. Recording that failure is itself kept trying until the database answers:
dropping it would leave the reaper to record "worker lost" instead of what happened.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from tuneboard.db.engine import describe_db_error

__all__ = [
    "BACKOFF_MAX_S",
    "DatabaseOutage",
    "from_database",
    "is_outage",
    "log_failure",
    "ride_out",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 2.0


class DatabaseOutage(RuntimeError):
    """The database stayed unreachable for longer than the worker waits for it."""

    def __init__(self, limit_s: float, cause: BaseException) -> None:
        super().__init__(
            f"the database was unreachable for more than {limit_s:g}s: {describe_db_error(cause)}"
        )


def is_outage(exc: BaseException) -> bool:
    """An error that a later try of the same unit of work may not meet: the server is down,
    restarting or dropped the connection (SQLSTATE class 08, 57P), a deadlock or serialization
    failure, a busy SQLite file."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def from_database(exc: BaseException) -> bool:
    """``exc`` is a database error, or was raised from one (its cause or context)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, SQLAlchemyError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def log_failure(logger: logging.Logger, exc: BaseException, message: str, *args: object) -> None:
    """``logger.exception(message, *args)``, except that an error from the database is logged
    as :func:`describe_db_error` puts it, with the traceback's frames but none of the driver's
    text: PostgreSQL's DETAIL quotes row values ("Failing row contains (...)")."""
    if not from_database(exc):
        logger.error(message, *args, exc_info=exc)
        return
    frames = "".join(traceback.format_tb(exc.__traceback__)).rstrip()
    logger.error(message + ": %s\nTraceback (most recent call last):\n%s", *args,
                 describe_db_error(exc), frames)


def ride_out(what: str, work: Callable[[], T], *, limit_s: float | None) -> T:
    """``work()``, tried again while it fails with an outage, for up to ``limit_s`` seconds
    from the first failure (``None``: until it succeeds); then :class:`DatabaseOutage`.

    ``work`` must be one unit of work (it commits or rolls back as a whole), so that a try
    that failed left nothing behind.
    """
    first_failure: float | None = None
    delay = BACKOFF_FIRST_S
    while True:
        try:
            result = work()
        except Exception as exc:
            if not is_outage(exc):
                raise
            now = time.monotonic()
            if first_failure is None:
                first_failure = now
                log.warning("%s: database unreachable (%s); trying again", what,
                            describe_db_error(exc))
            if limit_s is not None and now - first_failure >= limit_s:
                raise DatabaseOutage(limit_s, exc) from exc
            time.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)
            continue
        if first_failure is not None:
            log.warning("%s: database back after %.1fs", what, time.monotonic() - first_failure)
        return result
