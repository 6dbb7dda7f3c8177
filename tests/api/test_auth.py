from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import API, SPEC, Team, bearer, create_study


def assert_error(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    return body["error"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        bearer("tb_not-a-key"),
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "unknown", "basic", "empty"],
)
def test_requests_without_a_valid_key_are_401(
    client: TestClient, team: Team, headers: dict
) -> None:
    for method, path in [
        ("GET", "/studies"),
        ("POST", "/studies"),
        ("GET", "/leaderboard"),
        ("GET", "/audit"),
        ("GET", "/studies/1"),
    ]:
        response = client.request(method, API + path, headers=headers, json=SPEC)
        assert_error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"


def test_revoked_key_is_401(client: TestClient, team: Team) -> None:
    viewer = team.headers("viewer")
    assert client.get(f"{API}/studies", headers=viewer).status_code == 200
    revoked = client.post(f"{API}/keys/{team.key_ids['viewer']}/revoke", headers=team.headers())
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert_error(client.get(f"{API}/studies", headers=viewer), 401, "unauthorized")


def test_viewer_cannot_write(client: TestClient, team: Team) -> None:
    study_id = create_study(client, team)
    viewer = team.headers("viewer")
    error = assert_error(client.post(f"{API}/studies", json=SPEC, headers=viewer), 403, "forbidden")
    assert error["details"] == {"required": "member", "role": "viewer"}
    assert_error(client.post(f"{API}/studies/{study_id}/cancel", headers=viewer), 403, "forbidden")
    assert_error(
        client.post(f"{API}/studies/{study_id}/trials", json={"params": {}}, headers=viewer),
        403,
        "forbidden",
    )
    assert client.get(f"{API}/studies/{study_id}", headers=viewer).status_code == 200


@pytest.mark.parametrize("role", ["member", "maintainer"])
def test_admin_routes_need_admin(client: TestClient, team: Team, role: str) -> None:
    headers = team.headers(role)
    assert_error(client.get(f"{API}/audit", headers=headers), 403, "forbidden")
    assert_error(client.get(f"{API}/keys", headers=headers), 403, "forbidden")
    assert_error(
        client.post(f"{API}/keys", json={"role": "admin"}, headers=headers), 403, "forbidden"
    )
    assert_error(
        client.post(f"{API}/keys/{team.key_ids['viewer']}/revoke", headers=headers),
        403,
        "forbidden",
    )
    if role == "member":
        document = {"name": "house-rules", "rules": [], "changelog": "first"}
        assert_error(
            client.post(f"{API}/standards", json=document, headers=headers), 403, "forbidden"
        )


def test_keys_create_list_revoke(client: TestClient, team: Team, other_team: Team) -> None:
    created = client.post(
        f"{API}/keys", json={"role": "member", "name": "ci"}, headers=team.headers()
    )
    assert created.status_code == 201
    body = created.json()
    assert body["role"] == "member" and body["name"] == "ci"
    assert body["api_key"].startswith(body["prefix"])

    me = client.get(f"{API}/whoami", headers=bearer(body["api_key"])).json()
    assert me == {"team_id": team.id, "team": "alpha", "key_id": body["id"], "role": "member"}

    seen, cursor = [], None
    while True:
        page = client.get(
            f"{API}/keys", params={"limit": 2, "cursor": cursor}, headers=team.headers()
        ).json()
        assert all("api_key" not in k for k in page["items"])
        seen += [k["id"] for k in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 and seen == sorted(seen)

    assert_error(
        client.post(f"{API}/keys", json={"role": "root"}, headers=team.headers()), 422, "invalid"
    )
    # Another team's key is not found, and stays valid.
    other_key = other_team.key_ids["viewer"]
    assert_error(
        client.post(f"{API}/keys/{other_key}/revoke", headers=team.headers()), 404, "not_found"
    )
    assert client.get(f"{API}/studies", headers=other_team.headers("viewer")).status_code == 200
