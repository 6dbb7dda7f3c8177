"""Ensembles over HTTP: members ask (202, the task sent after the commit), viewers read, and
what cannot be ensembled is refused with its reason before anything is stored."""

from __future__ import annotations

import base64
import json
from typing import Any

import redis
from fastapi.testclient import TestClient

from tests.api.conftest import API, BROKER_URL, Team, create_study, run_trials, spec
from tests.api.test_auth import assert_error
from tuneboard.db import session_scope
from tuneboard.queue import ENSEMBLE_TASK
from tuneboard.studies import repository as repo

KEEP_BEST = {"checkpoint": {"keep": ["latest", "best"], "monitor": "val_accuracy"}}


def checkpointed_study(
    client: TestClient, team: Team, db_url: str, values: list[float], **changes: Any
) -> tuple[int, list[int]]:
    study_id = create_study(client, team, spec(callbacks=KEEP_BEST, **changes))
    numbers = run_trials(db_url, study_id, list(values), metrics=False)
    with session_scope(db_url) as session:
        for number in numbers:
            trial = repo.get_trial(session, study_id, number)
            assert trial is not None
            repo.set_checkpoint_path(session, trial.id, f"/checkpoints/{study_id}/{number}")
    return study_id, numbers


def sent_ensembles() -> list[list[Any]]:
    messages = redis.Redis.from_url(BROKER_URL).lrange("default", 0, -1)
    bodies = [json.loads(m) for m in messages]
    return [json.loads(base64.b64decode(b["body"]))[0] for b in bodies
            if b["headers"]["task"] == ENSEMBLE_TASK]


def test_a_member_asks_and_a_viewer_reads(client: TestClient, team: Team, db_url: str) -> None:
    study_id, numbers = checkpointed_study(client, team, db_url, [0.8, 0.95, 0.9])
    base = f"{API}/studies/{study_id}/ensemble"
    assert_error(client.get(base, headers=team.headers("viewer")), 404, "not_found")
    assert_error(client.post(base, json={"k": 2}, headers=team.headers("viewer")),
                 403, "forbidden")

    response = client.post(base, json={"k": 2}, headers=team.headers("member"))

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["state"] == "pending" and body["k"] == 2 and body["study_id"] == study_id
    assert body["members"] == [numbers[1], numbers[2]]  # best first
    assert body["metric"] == "val_accuracy"
    assert body["value"] is None and body["gain"] is None
    assert sent_ensembles() == [[body["id"]]]
    read = client.get(base, headers=team.headers("viewer"))
    assert read.status_code == 200 and read.json() == body
    assert body["verdict"] is None  # asked for by a person, not by a standard
    study = client.get(f"{API}/studies/{study_id}", headers=team.headers("viewer")).json()
    assert study["ensemble"] == body


def test_k_below_two_or_above_the_trials_is_refused(
    client: TestClient, team: Team, db_url: str
) -> None:
    study_id, _ = checkpointed_study(client, team, db_url, [0.8, 0.9])
    base = f"{API}/studies/{study_id}/ensemble"
    error = assert_error(client.post(base, json={"k": 1}, headers=team.headers("member")),
                         422, "invalid")
    assert error["details"][0]["field"] == "k"
    error = assert_error(client.post(base, json={"k": 3}, headers=team.headers("member")),
                         409, "conflict")
    assert "k is 3 but the study has 2 complete trial(s) with checkpoints" in error["message"]
    assert error["details"] == [
        {"field": "k", "reason": "only 2 complete trial(s) with checkpoints"}
    ]
    assert_error(client.get(base, headers=team.headers("viewer")), 404, "not_found")
    assert sent_ensembles() == []
    study = client.get(f"{API}/studies/{study_id}", headers=team.headers("viewer")).json()
    assert study["ensemble"] is None


def test_trials_without_checkpoints_do_not_count(
    client: TestClient, team: Team, db_url: str
) -> None:
    study_id = create_study(client, team, spec(callbacks=KEEP_BEST))
    run_trials(db_url, study_id, [0.8, 0.9], metrics=False)
    error = assert_error(
        client.post(f"{API}/studies/{study_id}/ensemble", json={"k": 2},
                    headers=team.headers("member")),
        409, "conflict",
    )
    assert "has 0 complete trial(s)" in error["message"]


def test_a_study_keeping_no_best_checkpoint_is_refused(
    client: TestClient, team: Team, db_url: str
) -> None:
    study_id = create_study(client, team, spec(callbacks={"checkpoint": {"keep": ["latest"]}}))
    error = assert_error(
        client.post(f"{API}/studies/{study_id}/ensemble", json={"k": 2},
                    headers=team.headers("member")),
        409, "conflict",
    )
    assert error["details"] == [{"field": "callbacks.checkpoint.keep", "reason": "best not kept"}]


def test_another_teams_study_is_not_found(
    client: TestClient, team: Team, other_team: Team, db_url: str
) -> None:
    study_id, _ = checkpointed_study(client, team, db_url, [0.8, 0.9])
    assert_error(client.post(f"{API}/studies/{study_id}/ensemble", json={"k": 2},
                             headers=other_team.headers("member")), 404, "not_found")


def test_a_standard_asking_for_an_ensemble_refuses_a_study_without_best_checkpoints(
    client: TestClient, team: Team, db_url: str
) -> None:
    standard = {"name": "wants-ensemble",
                "acceptance": [{"metric": "val_accuracy", "op": ">=", "value": 0.9},
                               {"ensemble": {"k": 2, "min_gain": 0.0}}]}
    published = client.post(f"{API}/standards", json=standard,
                            headers=team.headers("maintainer"))
    assert published.status_code == 201, published.text
    refused = spec(standard="wants-ensemble", callbacks={"checkpoint": {"keep": ["latest"]}})

    error = assert_error(client.post(f"{API}/studies", json=refused,
                                     headers=team.headers("member")), 422, "invalid")

    assert error["details"] == [{
        "field": "callbacks.checkpoint.keep",
        "reason": "best not kept; standard wants-ensemble@1's acceptance asks for an ensemble "
                  "of 2 trials",
    }]
    listed = client.get(f"{API}/studies", headers=team.headers("viewer")).json()
    assert listed["items"] == []
    create_study(client, team, spec(standard="wants-ensemble", callbacks=KEEP_BEST))


def test_a_standard_with_an_ensemble_criterion_is_validated_when_published(
    client: TestClient, team: Team
) -> None:
    bad = {"name": "bad-ensemble", "acceptance": [{"ensemble": {"k": 1}},
                                                  {"ensemble": {"k": 2, "gain": 0.1}}]}
    error = assert_error(client.post(f"{API}/standards", json=bad,
                                     headers=team.headers("maintainer")), 422, "invalid")
    fields = [d["field"] for d in error["details"]]
    assert len(fields) == 2
    assert fields[0].startswith("acceptance.0.") and fields[0].endswith(".ensemble.k")
    assert fields[1].startswith("acceptance.1.") and fields[1].endswith(".ensemble.gain")
    twice = {"name": "twice", "acceptance": [{"ensemble": {"k": 2}}, {"ensemble": {"k": 3}}]}
    error = assert_error(client.post(f"{API}/standards", json=twice,
                                     headers=team.headers("maintainer")), 422, "invalid")
    assert "a study is judged by one ensemble" in error["details"][0]["reason"]
