"""The API over HTTP (TestClient) against the real databases of ``db_url`` and a real broker
(a Redis database of its own, emptied after each test)."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.main import create_app
from tuneboard.config import Settings
from tuneboard.db import session_scope, utcnow
from tuneboard.optimization.storage import SqlStorage
from tuneboard.studies import repository as repo
from tuneboard.teams import service as teams

BROKER_URL = os.environ.get("TUNEBOARD_TEST_API_BROKER_URL", "redis://127.0.0.1:6379/13")
API = "/api/v1"

SPEC: dict[str, Any] = {
    "name": "digits-mlp",
    "objective": {
        "builtin": "classifier",
        "dataset": "digits",
        "metric": "val_accuracy",
        "direction": "maximize",
        "max_epochs": 5,
    },
    "search_space": {
        "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
        "optimizer": {"type": "categorical", "choices": ["sgd", "adam", "adamw"]},
        "hidden": {"type": "int", "low": 32, "high": 256, "step": 32},
    },
    "sampler": {"type": "random", "seed": 1},
    "budget": {"n_trials": 50, "max_parallel": 1},
}


def spec(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(SPEC)
    out.update(changes)
    return out


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Team:
    name: str
    id: int
    keys: dict[str, str]
    key_ids: dict[str, int]

    def headers(self, role: str = "admin") -> dict[str, str]:
        return bearer(self.keys[role])


def make_team(db_url: str, name: str) -> Team:
    with session_scope(db_url) as session:
        team, admin = teams.create_team(session, name)
        keys, ids = {"admin": admin}, {}
        for role in ("viewer", "member", "maintainer"):
            key, raw = teams.create_key(session, team, role, actor="test", name=role)
            keys[role], ids[role] = raw, key.id
        return Team(name=name, id=team.id, keys=keys, key_ids=ids)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db_url, broker_url=BROKER_URL, home=tmp_path, environment="test")


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    yield create_app(settings)
    redis.Redis.from_url(BROKER_URL).flushdb()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def team(db_url: str) -> Team:
    return make_team(db_url, "alpha")


@pytest.fixture
def other_team(db_url: str) -> Team:
    return make_team(db_url, "beta")


def create_study(client: TestClient, team: Team, body: dict[str, Any] | None = None) -> int:
    response = client.post(f"{API}/studies", json=body or SPEC, headers=team.headers("member"))
    assert response.status_code == 201, response.text
    study_id: int = response.json()["id"]
    return study_id


def run_trials(
    db_url: str,
    study_id: int,
    values: list[float | None] | list[tuple[float, float]],
    *,
    epochs: int = 3,
    metrics: bool = True,
) -> list[int]:
    """Run one trial per value through Optuna on our storage (ask/report/tell), with per-epoch
    metrics in ``trial_metrics``: a float completes the trial, None prunes it. Returns numbers."""
    with session_scope(db_url) as session:
        study = repo.get_study(session, None, study_id)
        assert study is not None
        name = study.optuna_name
    ostudy = optuna.load_study(study_name=name, storage=SqlStorage(db_url))
    space = {
        "lr": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True),
        "optimizer": optuna.distributions.CategoricalDistribution(["sgd", "adam", "adamw"]),
        "hidden": optuna.distributions.IntDistribution(32, 256, step=32),
    }
    numbers = []
    for i, value in enumerate(values):
        trial = ostudy.ask(space)
        final = value[0] if isinstance(value, tuple) else value if value is not None else 0.1
        if not isinstance(value, tuple):
            for step in range(epochs):
                trial.report(final * (step + 1) / epochs, step)
        if metrics:
            with session_scope(db_url) as session:
                row = repo.get_trial(session, study_id, trial.number)
                assert row is not None
                repo.record_reports(
                    session,
                    row.id,
                    {
                        step: {
                            "val_accuracy": final * (step + 1) / epochs,
                            "val_loss": 1.0 / (step + 1 + i),
                            "lr": 1e-3,
                        }
                        for step in range(epochs)
                    },
                    utcnow(),
                )
        if value is None:
            ostudy.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            ostudy.tell(trial, list(value) if isinstance(value, tuple) else value)
        numbers.append(trial.number)
    return numbers
