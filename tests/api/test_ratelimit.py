"""Rate limits (per key, per address, failed authentication) and per-team caps: 429 with
``Retry-After`` in the one error shape."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.main import create_app
from tests.api.conftest import API, BROKER_URL, SPEC, Team, bearer, create_study
from tests.api.test_auth import assert_error
from tuneboard.config import Settings
from tuneboard.db import session_scope
from tuneboard.db.models import Trial
from tuneboard.spec.states import TrialState


def _client(settings: Settings, **changes: Any) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=changes)))


def assert_429(response: Any) -> dict[str, Any]:
    error = assert_error(response, 429, "too_many_requests")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 3600
    assert error["details"]["retry_after_s"] == retry_after
    return error


def test_a_burst_past_the_per_key_limit_is_429(settings: Settings, team: Team) -> None:
    with _client(settings, rate_limit_per_key="5/minute") as client:
        for _ in range(5):
            assert client.get(f"{API}/studies", headers=team.headers()).status_code == 200
        error = assert_429(client.get(f"{API}/studies", headers=team.headers()))
        assert error["details"]["limit"] == "5 per 1 minute"
        # Another key of the same team has its own budget.
        assert client.get(f"{API}/studies", headers=team.headers("viewer")).status_code == 200


def test_the_per_address_limit_counts_every_api_request(settings: Settings, team: Team) -> None:
    with _client(settings, rate_limit_per_address="4/minute") as client:
        statuses = [client.get(f"{API}/studies", headers=team.headers(role)).status_code
                    for role in ("admin", "viewer", "member", "maintainer")]
        assert statuses == [200, 200, 200, 200]
        assert_429(client.get(f"{API}/studies", headers=team.headers("viewer")))
        assert_429(client.get(f"{API}/studies"))  # no key at all: refused before auth
        # Probes are not rate limited.
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200


def test_wrong_keys_are_locked_out(settings: Settings, team: Team) -> None:
    with _client(settings, rate_limit_auth_failures="3/minute") as client:
        for i in range(3):
            response = client.get(f"{API}/studies", headers=bearer(f"tb_wrong{i}"))
            assert_error(response, 401, "unauthorized")
        assert_429(client.get(f"{API}/studies", headers=bearer("tb_wrong4")))
        # Locked out: even the right key, so the answer says nothing about a guess.
        assert_429(client.get(f"{API}/studies", headers=team.headers()))
        assert client.get("/healthz").status_code == 200


def test_a_missing_key_is_not_a_failed_guess(settings: Settings, team: Team) -> None:
    with _client(settings, rate_limit_auth_failures="2/minute") as client:
        for _ in range(4):
            assert_error(client.get(f"{API}/studies"), 401, "unauthorized")
        assert client.get(f"{API}/studies", headers=team.headers()).status_code == 200


def test_redis_counters_are_shared_by_api_processes(settings: Settings, team: Team) -> None:
    shared = {"rate_limit_per_key": "3/minute", "rate_limit_storage_url": BROKER_URL}
    with _client(settings, **shared) as one, _client(settings, **shared) as two:
        assert one.get(f"{API}/studies", headers=team.headers()).status_code == 200
        assert two.get(f"{API}/studies", headers=team.headers()).status_code == 200
        assert one.get(f"{API}/studies", headers=team.headers()).status_code == 200
        assert_429(two.get(f"{API}/studies", headers=team.headers()))


def test_the_redis_broker_is_the_default_counter_store(settings: Settings) -> None:
    assert settings.rate_limit_storage_url == BROKER_URL
    embedded = Settings(home=settings.home, environment="test")
    assert embedded.rate_limit_storage_url == "memory://"


def test_a_bad_limit_is_refused_at_startup(settings: Settings) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        Settings(database_url=settings.database_url, rate_limit_per_key="lots")


def test_studies_per_hour_cap(settings: Settings, team: Team, other_team: Team) -> None:
    with _client(settings, max_studies_per_hour=2) as client:
        create_study(client, team)
        create_study(client, team)
        response = client.post(f"{API}/studies", json=SPEC, headers=team.headers("member"))
        error = assert_429(response)
        assert error["details"]["cap"] == "max_studies_per_hour"
        assert int(response.headers["Retry-After"]) > 3500
        create_study(client, other_team)  # each team has its own cap


def test_running_trials_cap(settings: Settings, team: Team, db_url: str) -> None:
    with _client(settings, max_running_trials_per_team=1) as client:
        study_id = create_study(client, team)
        with session_scope(db_url) as session:
            session.execute(update(Trial).values(state=TrialState.RUNNING))
        error = assert_429(client.post(f"{API}/studies", json=SPEC, headers=team.headers()))
        assert error["details"] == {
            "cap": "max_running_trials_per_team", "limit": 1, "running": 1, "retry_after_s": 30
        }
        enqueue = client.post(f"{API}/studies/{study_id}/trials",
                              json={"params": {"lr": 0.01, "optimizer": "adam", "hidden": 64}},
                              headers=team.headers())
        assert_429(enqueue)
        with session_scope(db_url) as session:
            session.execute(update(Trial).values(state=TrialState.COMPLETE))
        create_study(client, team)
