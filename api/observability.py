"""Prometheus metrics and readiness probes.

Each app has its own registry (several apps in one process, as in tests, do not collide).
The trials-by-state gauge is computed when Prometheus scrapes, from the database.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from functools import lru_cache
from urllib.parse import urlsplit

import redis
from alembic.script import ScriptDirectory
from kombu import Connection
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from tuneboard.config import Settings
from tuneboard.db import describe_db_error, get_engine, session_scope
from tuneboard.db.migrate import alembic_config
from tuneboard.spec.states import TrialState
from tuneboard.studies import service as studies

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 2.0


class _TrialStates(Collector):
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "tuneboard_trials", "Trials in the store by state", labels=["state"]
        )
        try:
            with session_scope(self.database_url) as session:
                counts = studies.trial_counts_in_store(session)
        except SQLAlchemyError as err:
            log.warning("trial gauge: database unavailable: %s", describe_db_error(err))
            return
        for state in TrialState:
            gauge.add_metric([state], counts.get(state, 0))
        yield gauge


class Metrics:
    def __init__(self, settings: Settings) -> None:
        disable_created_metrics()
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tuneboard_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tuneboard_http_request_duration_seconds",
            "HTTP request latency by method, route template and status",
            ["method", "route", "status"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.registry.register(_TrialStates(settings.database_url))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


# --- readiness ----------------------------------------------------------------------------------


def check_database(url: str) -> str | None:
    """None if the database answers ``SELECT 1``, else why not."""
    try:
        with get_engine(url).connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as err:
        return f"database: {describe_db_error(err)}"
    return None


@lru_cache(maxsize=1)
def _schema_heads() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def check_schema(url: str) -> str | None:
    """None if the database is at the head migration, else what is missing."""
    try:
        with get_engine(url).connect() as conn:
            current = set(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    except SQLAlchemyError:
        return "schema: not migrated; run `tuneboard db upgrade`"
    if current != _schema_heads():
        return (f"schema: at {', '.join(sorted(current)) or 'nothing'}, head is "
                f"{', '.join(sorted(_schema_heads()))}; run `tuneboard db upgrade`")
    return None


def _sqlite_path(broker_url: str) -> str:
    path = broker_url.split("sqlite://", 1)[1]
    return path[1:] if path.startswith("/") else path


def check_broker(url: str) -> str | None:
    """None if the broker is reachable, else why not."""
    try:
        if url.startswith(("redis://", "rediss://")):
            client = redis.Redis.from_url(
                url, socket_timeout=PROBE_TIMEOUT_S, socket_connect_timeout=PROBE_TIMEOUT_S
            )
            try:
                client.ping()
            finally:
                client.close()
        elif url.startswith("sqla+sqlite"):
            conn = sqlite3.connect(_sqlite_path(url), timeout=PROBE_TIMEOUT_S)
            try:
                conn.execute("SELECT 1")
            finally:
                conn.close()
        else:
            with Connection(url, connect_timeout=PROBE_TIMEOUT_S) as conn:
                conn.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT_S)
    except Exception as err:  # any failure to connect means "not ready"
        return f"broker {urlsplit(url).scheme}: {type(err).__name__}: {err}"
    return None
