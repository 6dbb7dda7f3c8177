"""A store of two teams for the read-only storage and ``tuneboard dashboard`` tests.

Team alpha: two studies both called "digits-mlp" (submitted through the API, one objective,
three finished trials with our fields filled in), a multi-objective one, and one created over
Optuna's HTTP API ("remote-study", named ``team<id>/remote-study`` inside) with metric names set
by its client. Team beta: one study of its own, which alpha's views must not see.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import redis
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.main import create_app
from tests.api.conftest import API, BROKER_URL, SPEC, make_team, run_trials, spec
from tuneboard.config import Settings
from tuneboard.db import session_scope
from tuneboard.db.engine import get_engine
from tuneboard.db.models import Trial
from tuneboard.optimization.storage import SqlStorage
from tuneboard.spec.objective import Direction
from tuneboard.spec.states import TrialState
from tuneboard.studies import remote

VERDICT = {"accepted": False, "pending": False, "criteria": [], "standard": "s@1", "note": ""}
REMOTE_METRICS = ["loss", "latency_ms"]
FINISHED = [TrialState.COMPLETE, TrialState.PRUNED]


@dataclass
class Store:
    url: str
    alpha: int
    beta: int
    mlp: int  # the first "digits-mlp"
    mlp_again: int  # the second "digits-mlp"
    multi: int
    remote: int
    beta_study: int
    mlp_trial_ids: list[int]
    beta_trial_id: int
    alpha_headers: dict[str, str]


def _finish_trials(url: str, study_id: int) -> list[int]:
    """Our own fields on the study's finished trials, as a worker and a verdict would leave them;
    returns their ids."""
    with get_engine(url).begin() as conn:
        ids = list(
            conn.execute(
                sa.select(Trial.id)
                .where(Trial.study_id == study_id, Trial.state.in_(FINISHED))
                .order_by(Trial.id)
            ).scalars()
        )
        for i, trial_id in enumerate(ids):
            conn.execute(
                sa.update(Trial).where(Trial.id == trial_id).values(
                    epochs_run=3 + i, device="cpu", attempt=1 + i,
                    accepted=i % 2 == 0, verdict={**VERDICT, "accepted": i % 2 == 0},
                )
            )
    return ids


def seed(url: str, home: Path) -> Store:
    settings = Settings(database_url=url, broker_url=BROKER_URL, home=home, environment="test")
    alpha, beta = make_team(url, "alpha"), make_team(url, "beta")
    multi_spec = spec(
        name="digits-mo",
        objective={**SPEC["objective"], "metric": ["val_accuracy", "epoch_time_s"],
                   "direction": ["maximize", "minimize"]},
    )
    try:
        with TestClient(create_app(settings)) as client:
            ids = []
            for owner, body in ((alpha, SPEC), (alpha, SPEC), (alpha, multi_spec), (beta, SPEC)):
                response = client.post(f"{API}/studies", json=body, headers=owner.headers("member"))
                assert response.status_code == 201, response.text
                ids.append(response.json()["id"])
    finally:
        redis.Redis.from_url(BROKER_URL).flushdb()
    mlp, mlp_again, multi, beta_study = ids
    run_trials(url, mlp, [0.5, 0.9, None])
    run_trials(url, multi, [(0.8, 2.0), (0.9, 3.0)])
    run_trials(url, beta_study, [0.7])
    with session_scope(url) as session:
        remote_id = remote.create_study(
            session, alpha.id, "test", [Direction.MINIMIZE, Direction.MINIMIZE], "remote-study"
        ).id
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.load_study(
            study_name=remote.optuna_name(alpha.id, "remote-study"), storage=SqlStorage(url)
        ).set_metric_names(REMOTE_METRICS)
    return Store(
        url=url, alpha=alpha.id, beta=beta.id, mlp=mlp, mlp_again=mlp_again, multi=multi,
        remote=remote_id, beta_study=beta_study, mlp_trial_ids=_finish_trials(url, mlp),
        beta_trial_id=_finish_trials(url, beta_study)[0], alpha_headers=alpha.headers("viewer"),
    )


def snapshot(url: str) -> dict[str, list[Any]]:
    """Every row of the tables a write through Optuna's storage API could touch."""
    with get_engine(url).connect() as conn:
        return {
            table: [tuple(row) for row in conn.execute(
                sa.text(f"SELECT * FROM {table} ORDER BY 1, 2")
            )]
            for table in ("studies", "trials", "trial_metrics")
        }
