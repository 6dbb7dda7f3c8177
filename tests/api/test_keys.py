"""Revoking keys: never the key making the request, never the team's last admin key."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import API, Team, bearer
from tests.api.test_auth import assert_error


def _key_id(client: TestClient, key: str) -> int:
    key_id: int = client.get(f"{API}/whoami", headers=bearer(key)).json()["key_id"]
    return key_id


def test_a_key_cannot_revoke_itself(client: TestClient, team: Team) -> None:
    admin_id = _key_id(client, team.keys["admin"])
    error = assert_error(
        client.post(f"{API}/keys/{admin_id}/revoke", headers=team.headers()), 409, "conflict"
    )
    assert error["details"]["reason"] == "self"
    assert "itself" in error["message"]
    assert client.get(f"{API}/studies", headers=team.headers()).status_code == 200


def test_the_last_admin_key_stays(client: TestClient, team: Team) -> None:
    first = _key_id(client, team.keys["admin"])
    second = client.post(f"{API}/keys", json={"role": "admin", "name": "second"},
                         headers=team.headers()).json()
    # With two admin keys, one may revoke the other.
    revoked = client.post(f"{API}/keys/{first}/revoke", headers=bearer(second["api_key"]))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert_error(client.get(f"{API}/keys", headers=team.headers()), 401, "unauthorized")
    # The second is now the last admin key (and the caller): refused, and still valid.
    assert_error(client.post(f"{API}/keys/{second['id']}/revoke",
                             headers=bearer(second["api_key"])), 409, "conflict")
    assert client.get(f"{API}/keys", headers=bearer(second["api_key"])).status_code == 200
    # Revoking an already revoked key is a no-op, not a conflict.
    again = client.post(f"{API}/keys/{first}/revoke", headers=bearer(second["api_key"]))
    assert again.status_code == 200
