"""Extending and cloning studies over HTTP, and a stopped study's reason on its page and in its
events. Trials are run as a worker runs them: Optuna ask/tell over ``SqlStorage`` (which claims
the dispatcher's waiting trial), then the dispatcher."""

from __future__ import annotations

import json
from collections.abc import Sequence

import optuna
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.api.conftest import API, Team, create_study, spec
from tuneboard.db import session_scope
from tuneboard.db.models import AuditEntry
from tuneboard.optimization.storage import SqlStorage
from tuneboard.spec.states import TrialState
from tuneboard.studies import dispatch
from tuneboard.studies import repository as repo

SPACE = {
    "lr": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True),
    "optimizer": optuna.distributions.CategoricalDistribution(["sgd", "adam", "adamw"]),
    "hidden": optuna.distributions.IntDistribution(32, 256, step=32),
}


def _work(db_url: str, study_id: int, values: Sequence[float]) -> int:
    """Run waiting trials with these values until they run out or the study finishes."""
    with session_scope(db_url) as session:
        study = repo.get_study(session, None, study_id)
        assert study is not None
        loaded = optuna.load_study(study_name=study.optuna_name, storage=SqlStorage(db_url))
    ran = 0
    for value in values:
        with session_scope(db_url) as session:
            study = repo.get_study(session, None, study_id)
            assert study is not None
            if study.state.is_finished():
                break
        trial = loaded.ask(SPACE)
        loaded.tell(trial, value)
        ran += 1
        with session_scope(db_url) as session:
            dispatch.dispatch(session, study_id)
    return ran


def _get(client: TestClient, team: Team, study_id: int) -> dict:
    response = client.get(f"{API}/studies/{study_id}", headers=team.headers("viewer"))
    assert response.status_code == 200, response.text
    return response.json()


def _extend(client: TestClient, team: Team, study_id: int, body: dict, role: str = "member"):
    return client.post(f"{API}/studies/{study_id}/extend", json=body, headers=team.headers(role))


def _audit(db_url: str, action: str) -> list[AuditEntry]:
    with session_scope(db_url) as session:
        rows = list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))
        session.expunge_all()
        return rows


def test_extend_continues_a_completed_study_with_its_history(
    client: TestClient, team: Team, db_url: str
) -> None:
    study_id = create_study(client, team, spec(budget={"n_trials": 2, "max_parallel": 1}))
    assert _work(db_url, study_id, [0.5, 0.6, 0.7]) == 2
    assert _get(client, team, study_id)["state"] == "completed"

    response = _extend(client, team, study_id, {"n_trials": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "queued"  # no worker ever claimed a trial of it
    assert body["finished_at"] is None
    assert body["spec"]["budget"]["n_trials"] == 5
    assert body["counts"]["waiting"] == 1

    assert _work(db_url, study_id, [0.1, 0.2, 0.3, 0.4]) == 3
    detail = _get(client, team, study_id)
    assert detail["state"] == "completed" and detail["counts"]["complete"] == 5
    # One Optuna study throughout: the sampler saw the first two trials.
    with session_scope(db_url) as session:
        study = repo.get_study(session, None, study_id)
        assert study is not None
        loaded = optuna.load_study(study_name=study.optuna_name, storage=SqlStorage(db_url))
    assert [t.number for t in loaded.trials] == [0, 1, 2, 3, 4]
    (entry,) = _audit(db_url, "study.extend")
    assert entry.object_id == str(study_id) and entry.details["n_trials"] == 3
    assert entry.details["from_state"] == "completed"


def test_a_stopped_study_shows_why_and_an_extension_gives_it_new_trials(
    client: TestClient, team: Team, db_url: str
) -> None:
    study_id = create_study(client, team, spec(stopping={"patience": 2, "min_delta": 0.01}))
    assert _work(db_url, study_id, [0.9, 0.5, 0.5, 0.5]) == 3
    detail = _get(client, team, study_id)
    assert detail["state"] == "completed"
    assert detail["stop_reason"].startswith("stopping.patience: the best val_accuracy (0.9)")
    assert detail["spec"]["stopping"] == {"patience": 2, "min_delta": 0.01, "terminator": None}
    listed = client.get(f"{API}/studies", headers=team.headers("viewer")).json()["items"]
    assert listed[0]["stop_reason"] == detail["stop_reason"]

    with client.stream("GET", f"{API}/studies/{study_id}/events?once=true",
                       headers=team.headers("viewer")) as stream:
        text = "".join(stream.iter_text())
    data = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]
    assert data[0]["stop_reason"] == detail["stop_reason"] and data[0]["finished"] is True

    response = _extend(client, team, study_id, {"n_trials": 10})
    assert response.status_code == 200, response.text
    assert response.json()["stop_reason"] is None
    # The rule judges only the extension's trials: two more without improvement, then it stops.
    assert _work(db_url, study_id, [0.5] * 10) == 2
    detail = _get(client, team, study_id)
    assert detail["state"] == "completed" and detail["counts"]["complete"] == 5
    assert detail["stop_reason"].startswith("stopping.patience")


def test_extend_a_cancelled_study_and_raise_its_timeout(
    client: TestClient, team: Team, db_url: str
) -> None:
    study_id = create_study(client, team, spec(budget={"n_trials": 4, "timeout_s": 60}))
    assert client.post(f"{API}/studies/{study_id}/cancel",
                       headers=team.headers("member")).status_code == 202
    response = _extend(client, team, study_id, {"n_trials": 2, "timeout_s": 30})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "queued"
    assert body["spec"]["budget"]["n_trials"] == 3  # one sampler trial was created, 2 more
    assert body["spec"]["budget"]["timeout_s"] == 30  # never started: 30 s from its start
    assert body["counts"]["waiting"] == 1 and body["counts"]["fail"] == 1, body["counts"]


def test_extend_refuses_active_failed_foreign_and_bad_requests(
    client: TestClient, team: Team, other_team: Team, db_url: str
) -> None:
    study_id = create_study(client, team)
    response = _extend(client, team, study_id, {"n_trials": 2})
    assert response.status_code == 409, response.text
    assert "queued" in response.json()["error"]["message"]
    assert _extend(client, other_team, study_id, {"n_trials": 2}).status_code == 404
    assert _extend(client, team, study_id, {"n_trials": 2}, role="viewer").status_code == 403
    for body, field in (({"n_trials": 0}, "n_trials"), ({}, "n_trials"),
                        ({"n_trials": 1, "timeout_s": -1}, "timeout_s"),
                        ({"n_trials": 1, "budget": 3}, "budget")):
        response = _extend(client, team, study_id, body)
        assert response.status_code == 422, (body, response.text)
        assert field in json.dumps(response.json()["error"]["details"]), response.text

    failing = create_study(client, team, spec(budget={"n_trials": 5, "max_failed": 0}))
    with session_scope(db_url) as session:
        (trial,) = repo.list_trials(session, failing, limit=10)
        trial.state = TrialState.FAIL
        dispatch.dispatch(session, failing)
    assert _get(client, team, failing)["state"] == "failed"
    response = _extend(client, team, failing, {"n_trials": 2})
    assert response.status_code == 409 and "clone" in response.json()["error"]["message"]
    assert _audit(db_url, "study.extend") == []


def test_clone_merges_changes_and_links_the_parent(
    client: TestClient, team: Team, other_team: Team, db_url: str
) -> None:
    parent = create_study(client, team, spec(budget={"n_trials": 3, "max_parallel": 2}))
    changes = {"name": "digits-mlp-2", "budget": {"n_trials": 7},
               "search_space": {"hidden": None}, "stopping": {"patience": 4}}
    response = client.post(f"{API}/studies/{parent}/clone", json={"changes": changes},
                           headers=team.headers("member"))
    assert response.status_code == 201, response.text
    child = response.json()
    assert child["id"] != parent and child["parent_id"] == parent
    assert child["name"] == "digits-mlp-2" and child["state"] == "queued"
    assert child["spec"]["budget"]["n_trials"] == 7 and child["spec"]["budget"]["max_parallel"] == 2
    assert set(child["spec"]["search_space"]) == {"lr", "optimizer"}
    assert child["spec"]["stopping"]["patience"] == 4
    assert child["counts"]["waiting"] == 2  # its own first trials, none copied
    assert _get(client, team, child["id"])["parent_id"] == parent
    assert _get(client, team, parent)["parent_id"] is None
    (entry,) = _audit(db_url, "study.clone")
    assert entry.object_id == str(child["id"]) and entry.details["parent_id"] == parent

    bad = client.post(f"{API}/studies/{parent}/clone",
                      json={"changes": {"budget": {"n_trials": 0}}},
                      headers=team.headers("member"))
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"]["details"][0]["field"] == "budget.n_trials"
    assert client.post(f"{API}/studies/{parent}/clone", json={"changes": {}},
                       headers=other_team.headers("member")).status_code == 404
    with session_scope(db_url) as session:
        assert len(repo.list_studies(session, team.id, limit=10)) == 2  # nothing half-created
