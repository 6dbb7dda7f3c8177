"""A broker that is frozen or down must cost the API nothing but the messages it owed: studies
are acknowledged within a publish timeout, read routes and ``/readyz`` keep answering, and the
reaper sends the trials once the broker is back."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from api.main import create_app
from tests.api.conftest import API, SPEC, make_team
from tests.faults.conftest import RedisServer
from tests.faults.invariants import check_invariants
from tuneboard.config import Settings
from tuneboard.db import session_scope, utcnow
from tuneboard.db.models import Study, Trial
from workers.reaper import reap_once

# A request under a frozen broker waits out at most the rate-limit store's timeout and one
# publish timeout (1 s each), plus slack for a slow shared machine; one the broker held would
# wait until the test thaws it, after every answer is in (or the client's 30 s timeout).
PROMPT_S = 5.0


def _settings(db_url: str, broker_url: str, home: Path) -> Settings:
    return Settings(database_url=db_url, broker_url=broker_url, home=home, environment="test",
                    broker_publish_timeout_s=1.0, broker_publish_backoff_s=1.0)


def _timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    response = call()
    return response, time.monotonic() - start


def _counts(db_url: str) -> tuple[int, int]:
    with session_scope(db_url) as session:
        studies = session.scalar(select(func.count()).select_from(Study)) or 0
        trials = session.scalar(select(func.count()).select_from(Trial)) or 0
    return studies, trials


def test_a_frozen_broker_never_holds_a_request(
    db_url: str, tmp_path: Path, redis_server: RedisServer, serve: Callable[[FastAPI], str]
) -> None:
    url = serve(create_app(_settings(db_url, redis_server.url, tmp_path)))
    team = make_team(db_url, "alpha")
    member = team.headers("member")
    with httpx.Client(base_url=url, timeout=30) as http:
        warm = http.post(f"{API}/studies", json=SPEC, headers=member)
        assert warm.status_code == 201, warm.text
        acknowledged = [warm.json()["id"]]
        redis_server.freeze()
        try:
            # More concurrent creates than one publish timeout can hide, reads beside them.
            with ThreadPoolExecutor(12) as pool:
                creates = [pool.submit(_timed, lambda i=i: http.post(
                    f"{API}/studies", json={**SPEC, "name": f"frozen-{i}"}, headers=member))
                    for i in range(8)]
                reads = [pool.submit(_timed, lambda: http.get(f"{API}/studies", headers=member))
                         for _ in range(4)]
                for future in creates:
                    response, took = future.result()
                    assert response.status_code == 201, response.text
                    acknowledged.append(response.json()["id"])
                    assert took < PROMPT_S, f"POST /studies took {took:.1f}s"
                for future in reads:
                    response, took = future.result()
                    assert response.status_code == 200, response.text
                    assert took < PROMPT_S, f"GET /studies took {took:.1f}s"
            ready, took = _timed(lambda: http.get("/readyz"))
            assert took < PROMPT_S, f"/readyz took {took:.1f}s"
            assert ready.status_code == 503
            details = ready.json()["error"]["details"]
            assert details["database"] == "ok"
            assert details["broker"].startswith("down: ")
        finally:
            redis_server.thaw()
        # Every acknowledged study exists, each with the trials it was owed (waiting for the
        # broker, or for the reaper).
        assert _counts(db_url) == (9, 9)
        check_invariants(db_url, acknowledged)
        time.sleep(1.1)  # past the producer's back-off
        assert http.get("/readyz").json()["checks"]["broker"] == "ok"


def test_a_stopped_broker_leaves_trials_to_the_reaper(
    db_url: str, tmp_path: Path, redis_server: RedisServer, serve: Callable[[FastAPI], str]
) -> None:
    settings = _settings(db_url, redis_server.url, tmp_path)
    url = serve(create_app(settings))
    team = make_team(db_url, "alpha")
    redis_server.stop()
    acknowledged: list[int] = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for i in range(3):
            response, took = _timed(lambda i=i: http.post(
                f"{API}/studies", json={**SPEC, "name": f"down-{i}"}, headers=team.headers()))
            assert response.status_code == 201, response.text
            assert took < PROMPT_S, f"POST /studies took {took:.1f}s"
            acknowledged.append(response.json()["id"])
        ready = http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["error"]["details"]["broker"].startswith("down: ")
    redis_server.start()
    assert redis_server.client().llen("default") == 0
    time.sleep(1.1)  # past the producer's back-off
    report = reap_once(settings, now=utcnow() + timedelta(hours=1))
    assert report.resent == 3
    assert redis_server.client().llen("default") == 3
    check_invariants(db_url, acknowledged)
