from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import API, SPEC, Team, create_study, spec
from tests.api.test_auth import assert_error


def test_create_returns_201_with_the_study(client: TestClient, team: Team) -> None:
    response = client.post(f"{API}/studies", json=SPEC, headers=team.headers("member"))
    assert response.status_code == 201, response.text
    study = response.json()
    assert study["name"] == "digits-mlp"
    assert study["state"] == "queued"
    assert study["metrics"] == ["val_accuracy"] and study["directions"] == ["maximize"]
    assert study["spec"]["budget"]["n_trials"] == 50
    assert study["counts"]["waiting"] == 1 and study["n_trials"] == 1
    assert study["best_trial"] is None and study["standard"] is None
    assert study["created_at"].endswith("Z")

    again = client.get(f"{API}/studies/{study['id']}", headers=team.headers("viewer"))
    assert again.status_code == 200
    assert again.json()["spec"] == study["spec"]


def test_idempotency_key(client: TestClient, team: Team) -> None:
    headers = {**team.headers("member"), "Idempotency-Key": "submit-1"}
    first = client.post(f"{API}/studies", json=SPEC, headers=headers)
    assert first.status_code == 201
    replay = client.post(f"{API}/studies", json=SPEC, headers=headers)
    assert replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == first.json()["id"]

    conflict = client.post(f"{API}/studies", json=spec(name="other"), headers=headers)
    error = assert_error(conflict, 409, "conflict")
    assert error["details"]["study_id"] == first.json()["id"]

    listed = client.get(f"{API}/studies", headers=team.headers()).json()["items"]
    assert [s["id"] for s in listed] == [first.json()["id"]]


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    body = spec()
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_with(("search_space", "lr", "low"), 1.0), "search_space.lr.high"),
        (_with(("search_space", "lr", "low"), 0.0), "search_space.lr.low"),
        (
            _with(("search_space", "optimizer", "choices"), ["adam", "adamx"]),
            "search_space.optimizer.choices.1",
        ),
        (_with(("budget", "n_trials"), 0), "budget.n_trials"),
        (_with(("search_space", "lr", "when"), {"nope": ["x"]}), "search_space.lr.when.nope"),
        (_with(("objective", "metric"), ["val_accuracy", "val_loss"]), "direction"),
        ({k: v for k, v in SPEC.items() if k != "budget"}, "budget"),
        (_with(("unknown_key",), 1), "unknown_key"),
    ],
    ids=[
        "low>=high",
        "log-low<=0",
        "unknown-choice",
        "n_trials<=0",
        "when-unknown",
        "multi-objective-direction",
        "missing-budget",
        "extra-key",
    ],
)
def test_bad_specs_are_422_naming_the_field(
    client: TestClient, team: Team, body: dict[str, Any], field: str
) -> None:
    error = assert_error(
        client.post(f"{API}/studies", json=body, headers=team.headers("member")), 422, "invalid"
    )
    fields = [d["field"] for d in error["details"]]
    assert any(f == field or f.endswith("." + field) for f in fields), fields
    assert all(d["reason"] for d in error["details"])
    assert client.get(f"{API}/studies", headers=team.headers()).json()["items"] == []


def test_multi_objective_with_a_pruner_is_422(client: TestClient, team: Team) -> None:
    body = spec(pruner={"type": "median"}, sampler={"type": "nsga2"})
    body["objective"] = {
        **body["objective"],
        "metric": ["val_accuracy", "epoch_time_s"],
        "direction": ["maximize", "minimize"],
    }
    error = assert_error(
        client.post(f"{API}/studies", json=body, headers=team.headers("member")), 422, "invalid"
    )
    assert "pruner" in [d["field"] for d in error["details"]]


@pytest.mark.parametrize("payload", [b"[1, 2]", b"{not json", b'"a string"'])
def test_non_object_bodies_are_422(client: TestClient, team: Team, payload: bytes) -> None:
    response = client.post(
        f"{API}/studies",
        content=payload,
        headers={**team.headers("member"), "Content-Type": "application/json"},
    )
    assert_error(response, 422, "invalid")


def test_list_filters_and_pagination(client: TestClient, team: Team) -> None:
    ids = [create_study(client, team, spec(name=f"s{i % 2}")) for i in range(5)]
    client.post(f"{API}/studies/{ids[0]}/cancel", headers=team.headers("member"))

    seen, cursor, pages = [], None, 0
    while True:
        response = client.get(
            f"{API}/studies", params={"limit": 2, "cursor": cursor}, headers=team.headers("viewer")
        )
        body = response.json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= 2
        seen += [s["id"] for s in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True) and pages == 3

    by_name = client.get(f"{API}/studies", params={"name": "s1"}, headers=team.headers()).json()
    assert sorted(s["id"] for s in by_name["items"]) == [ids[1], ids[3]]
    cancelled = client.get(
        f"{API}/studies", params={"state": "cancelled"}, headers=team.headers()
    ).json()
    assert [s["id"] for s in cancelled["items"]] == [ids[0]]
    assert (
        client.get(f"{API}/studies", params={"standard": "nothing"}, headers=team.headers()).json()[
            "items"
        ]
        == []
    )
    assert_error(
        client.get(f"{API}/studies", params={"state": "sleeping"}, headers=team.headers()),
        422,
        "invalid",
    )


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "bm90IGpzb24",
        "WyJhIl0",
        "WzEsMl0",
        "W3RydWVd",
        "Wzk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5XQ",
    ],
)
def test_bad_cursors_are_422(client: TestClient, team: Team, cursor: str) -> None:
    error = assert_error(
        client.get(f"{API}/studies", params={"cursor": cursor}, headers=team.headers()),
        422,
        "invalid",
    )
    assert error["details"][0]["field"] == "cursor"


def test_limit_is_validated_and_capped(client: TestClient, team: Team) -> None:
    create_study(client, team)
    assert_error(
        client.get(f"{API}/studies", params={"limit": 0}, headers=team.headers()), 422, "invalid"
    )
    capped = client.get(f"{API}/studies", params={"limit": 10**12}, headers=team.headers())
    assert capped.status_code == 200 and len(capped.json()["items"]) == 1


def test_cancel_is_202_and_idempotent(client: TestClient, team: Team) -> None:
    study_id = create_study(client, team)
    response = client.post(f"{API}/studies/{study_id}/cancel", headers=team.headers("member"))
    assert response.status_code == 202
    assert response.json() == {"id": study_id, "state": "cancelled"}
    study = client.get(f"{API}/studies/{study_id}", headers=team.headers()).json()
    assert study["state"] == "cancelled" and study["finished_at"] is not None
    assert study["counts"]["fail"] == 1 and study["counts"]["waiting"] == 0
    again = client.post(f"{API}/studies/{study_id}/cancel", headers=team.headers("member"))
    assert again.status_code == 202 and again.json()["state"] == "cancelled"
    assert_error(
        client.post(
            f"{API}/studies/{study_id}/trials", json={"params": {}}, headers=team.headers("member")
        ),
        409,
        "conflict",
    )


def test_other_teams_studies_are_404_and_never_listed(
    client: TestClient, team: Team, other_team: Team
) -> None:
    study_id = create_study(client, team)
    theirs = other_team.headers("admin")
    for method, path in [
        ("GET", f"/studies/{study_id}"),
        ("POST", f"/studies/{study_id}/cancel"),
        ("GET", f"/studies/{study_id}/trials"),
        ("GET", f"/studies/{study_id}/trials/0"),
        ("GET", f"/studies/{study_id}/trials/0/metrics"),
        ("GET", f"/studies/{study_id}/leaderboard"),
        ("GET", f"/studies/{study_id}/importance"),
        ("GET", f"/studies/{study_id}/events?once=true"),
    ]:
        assert_error(client.request(method, API + path, headers=theirs), 404, "not_found")
    assert_error(
        client.post(
            f"{API}/studies/{study_id}/trials", json={"params": {"lr": 0.01}}, headers=theirs
        ),
        404,
        "not_found",
    )
    assert client.get(f"{API}/studies", headers=theirs).json() == {"items": [], "next_cursor": None}
    assert client.get(f"{API}/audit", headers=theirs).json()["items"][-1]["action"] == (
        "team.create"
    )
    mine = client.get(f"{API}/studies/{study_id}", headers=team.headers("viewer"))
    assert mine.json()["state"] == "queued"


def test_unknown_study_and_out_of_range_ids(client: TestClient, team: Team) -> None:
    assert_error(client.get(f"{API}/studies/999999", headers=team.headers()), 404, "not_found")
    assert_error(client.get(f"{API}/studies/{2**63}", headers=team.headers()), 422, "invalid")
    assert_error(client.get(f"{API}/studies/abc", headers=team.headers()), 422, "invalid")
    assert_error(client.get(f"{API}/studies/0", headers=team.headers()), 422, "invalid")


def test_values_the_database_cannot_take_are_4xx(client: TestClient, team: Team) -> None:
    for path in ["/studies?name=%00", "/leaderboard?metric=a%00", "/leaderboard?standard=%00"]:
        response = client.get(API + path, headers=team.headers())
        assert response.status_code in (200, 422), response.text
    body = spec(description="a\u0000b")
    response = client.post(f"{API}/studies", json=body, headers=team.headers("member"))
    assert response.status_code in (201, 422), response.text
