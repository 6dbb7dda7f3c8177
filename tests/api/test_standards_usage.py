"""GET /standards/{name}/usage after studies ran under two versions of a standard: their
overrides, the trials each criterion accepted and rejected, and the best accepted trial."""

from __future__ import annotations

import copy
from typing import Any

from fastapi.testclient import TestClient
from optuna.distributions import CategoricalDistribution, FloatDistribution, distribution_to_json
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.api.conftest import API, Team
from tests.api.test_auth import assert_error
from tests.tuneboard.standards.support import BASELINE, spec
from tuneboard.db import session_scope
from tuneboard.db.models import Trial
from tuneboard.spec.states import TrialOrigin, TrialState
from tuneboard.studies import verdicts

METRICS_ONLY = [
    {"metric": "val_accuracy", "op": ">=", "value": 0.97},
    {"metric": "generalization_gap", "op": "<=", "value": 0.03},
]
BUDGET = {"n_trials": 3, "max_parallel": 3}
SGD_ADAM = ("sgd", "adam")


def _study(client: TestClient, team: Team, body: dict[str, Any]) -> int:
    response = client.post(f"{API}/studies", json=body, headers=team.headers("member"))
    assert response.status_code == 201, response.text
    study_id: int = response.json()["id"]
    return study_id


def _judge(db_url: str, study_id: int, outcomes: list[tuple[float, float]]) -> None:
    """Finish the study's first trials as the runner does and judge each (real verdicts)."""
    with session_scope(db_url) as session:
        trials = _trials(session, study_id, TrialOrigin.SAMPLER)
        for trial, (accuracy, gap) in zip(trials, outcomes, strict=False):
            _finish(session, trial, accuracy, gap)


def _finish(session: Session, trial: Trial, accuracy: float, gap: float) -> None:
    metrics = {"val_accuracy": accuracy, "generalization_gap": gap}
    trial.system_attrs = {**(trial.system_attrs or {}),
                          verdicts.FINAL_METRICS_ATTR: verdicts.encode_metrics(metrics)}
    trial.state, trial.value, trial.values = TrialState.COMPLETE, accuracy, [accuracy]
    trial.params = {"lr": 1e-3, "optimizer": 1.0}  # as the sampler stores them
    trial.distributions = {"lr": distribution_to_json(FloatDistribution(1e-4, 1e-2, log=True)),
                           "optimizer": distribution_to_json(CategoricalDistribution(SGD_ADAM))}
    session.flush()
    verdicts.judge(session, trial, metrics)


def _trials(session: Session, study_id: int, origin: TrialOrigin) -> list[Trial]:
    return list(session.scalars(
        select(Trial).where(Trial.study_id == study_id, Trial.origin == origin)
        .order_by(Trial.number)
    ))


def test_usage_per_version(client: TestClient, team: Team, other_team: Team, db_url: str) -> None:
    maintainer = team.headers("maintainer")
    created = client.post(f"{API}/standards", json=BASELINE, headers=maintainer)
    assert created.status_code == 201, created.text

    judged = _study(client, team, spec(budget=BUDGET))
    _judge(db_url, judged, [(0.98, 0.01), (0.90, 0.01), (0.985, 0.01)])
    with session_scope(db_url) as session:  # the first candidate's stability re-runs agree
        for rerun, accuracy in zip(_trials(session, judged, TrialOrigin.STABILITY)[:2],
                                   (0.981, 0.979), strict=True):
            _finish(session, rerun, accuracy, 0.01)
    space = {**spec()["search_space"],
             "optimizer": {"type": "categorical", "choices": ["adam", "rmsprop"]}}
    overridden = _study(client, team, spec(name="ablation", search_space=space, budget=BUDGET,
                                           override={"reason": "rmsprop ablation"}))

    v2 = {**copy.deepcopy(BASELINE), "acceptance": METRICS_ONLY, "changelog": "no stability"}
    response = client.post(f"{API}/standards/vision-baseline/versions", json=v2,
                           headers=maintainer)
    assert response.status_code == 201, response.text
    later = _study(client, team, spec(name="later", budget=BUDGET))
    _judge(db_url, later, [(0.975, 0.01), (0.99, 0.05)])

    usage = client.get(f"{API}/standards/vision-baseline/usage", headers=team.headers("viewer"))
    assert usage.status_code == 200, usage.text
    body = usage.json()
    assert body["name"] == "vision-baseline"
    first, second = body["versions"]

    assert (first["version"], first["standard"], first["status"]) == (
        1, "vision-baseline@1", "active"
    )
    assert first["studies_total"] == 2 and first["overrides"] == 1
    studies = {s["id"]: s for s in first["studies"]}
    assert [s["id"] for s in first["studies"]] == [overridden, judged]  # newest first
    assert studies[overridden]["override_reason"] == "rmsprop ablation"
    assert studies[overridden]["name"] == "ablation" and studies[overridden]["version"] == 1
    assert studies[judged]["override_reason"] is None
    assert studies[judged]["state"] == "queued"  # no worker ran here: the runner starts it
    assert studies[judged]["trials"] == {"accepted": 1, "rejected": 1, "pending": 1}
    assert first["trials"] == {"accepted": 1, "rejected": 1, "pending": 1}
    assert [(c["kind"], c["metric"], c["op"], c["threshold"], c["passed"], c["failed"],
             c["pending"]) for c in first["criteria"]] == [
        ("metric", "val_accuracy", ">=", 0.97, 2, 1, 0),
        ("metric", "generalization_gap", "<=", 0.03, 3, 0, 0),
        ("stability", "val_accuracy", "std<=", 0.005, 1, 0, 2),
    ]
    [best] = first["best_accepted"]
    assert (best["metric"], best["direction"], best["study_id"], best["trial_number"],
            best["value"]) == ("val_accuracy", "maximize", judged, 0, 0.98)
    assert best["params"] == {"lr": 1e-3, "optimizer": "adam"}

    assert (second["version"], second["studies_total"], second["overrides"]) == (2, 1, 0)
    assert [s["id"] for s in second["studies"]] == [later]
    assert second["trials"] == {"accepted": 1, "rejected": 1, "pending": 0}
    assert [(c["metric"], c["passed"], c["failed"]) for c in second["criteria"]] == [
        ("val_accuracy", 2, 0), ("generalization_gap", 1, 1)
    ]
    [best] = second["best_accepted"]
    assert (best["study_id"], best["trial_number"], best["value"]) == (later, 0, 0.975)

    assert_error(client.get(f"{API}/standards/vision-baseline/usage",
                            headers=other_team.headers("viewer")), 404, "not_found")
    assert_error(client.get(f"{API}/standards/nope/usage", headers=team.headers("viewer")),
                 404, "not_found")


def test_usage_of_an_unused_standard(client: TestClient, team: Team) -> None:
    document = {"name": "house-rules", "rules": [], "acceptance": METRICS_ONLY}
    assert client.post(f"{API}/standards", json=document,
                       headers=team.headers("maintainer")).status_code == 201
    body = client.get(f"{API}/standards/house-rules/usage", headers=team.headers("viewer")).json()
    [version] = body["versions"]
    assert (version["studies_total"], version["studies"], version["best_accepted"]) == (0, [], [])
    assert version["trials"] == {"accepted": 0, "rejected": 0, "pending": 0}
    assert [(c["metric"], c["passed"], c["failed"], c["pending"])
            for c in version["criteria"]] == [("val_accuracy", 0, 0, 0),
                                              ("generalization_gap", 0, 0, 0)]
