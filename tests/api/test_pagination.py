"""One pagination for every list route: the same ``limit`` clamp, the same opaque cursor, and an
OpenAPI description of the cursor that says what the server accepts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.pagination import CURSOR_PATTERN, cursor_pattern, decode_cursor
from tests.api.conftest import API, Team
from tests.api.test_auth import assert_error
from tests.api.test_standards_api import NAME, created, publish, standard

BAD_CURSORS = [
    "garbage!",  # not base64url
    "bm90IGpzb24",  # base64url of something that is not JSON
    "WyJhIl0",  # ["a"]: a key of the wrong type
    "WzEsMl0",  # [1,2]: a key of the wrong length
    "Wzk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5XQ",  # base64 of a JSON list (an older format)
    "1~2",  # a key of the wrong length
    "9" * 19,  # an int beyond 64 bits
]


def _list_operations(schema: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Path -> parameters of every GET that takes a cursor."""
    found = {}
    for path, item in schema["paths"].items():
        params = item.get("get", {}).get("parameters", [])
        if any(p["name"] == "cursor" for p in params):
            found[path] = params
    return found


def test_every_list_route_documents_the_same_cursor_and_limit(client: TestClient) -> None:
    lists = _list_operations(client.get("/openapi.json").json())
    assert {
        f"{API}/studies",
        f"{API}/standards",
        f"{API}/standards/{{name}}/versions",
        f"{API}/keys",
        f"{API}/audit",
    } <= set(lists)
    for path, params in lists.items():
        by_name = {p["name"]: p for p in params}
        cursor = by_name["cursor"]
        assert cursor["in"] == "query" and not cursor.get("required", False), path
        accepted = [s for s in cursor["schema"]["anyOf"] if s.get("type") == "string"]
        leaderboard = {
            f"{API}/leaderboard": cursor_pattern(int, str, float, int),
            f"{API}/studies/{{study_id}}/leaderboard": cursor_pattern(int, float, int),
        }
        assert accepted == [
            {"type": "string", "pattern": leaderboard.get(path, CURSOR_PATTERN)}
        ], path
        assert by_name["limit"]["schema"]["minimum"] == 1, path


def test_standards_issue_the_common_cursor(client: TestClient, team: Team) -> None:
    for name in ("a-std", "b-std"):
        created(publish(client, team, standard(name=name)))
    created(
        client.post(
            f"{API}/standards/a-std/versions",
            json=standard(name="a-std", description="second"),
            headers=team.headers("maintainer"),
        )
    )
    viewer = team.headers("viewer")
    for url in (f"{API}/standards", f"{API}/standards/a-std/versions"):
        first = client.get(url, params={"limit": 1}, headers=viewer).json()
        cursor = first["next_cursor"]
        assert re.fullmatch(CURSOR_PATTERN, cursor), cursor
        (key,) = decode_cursor(cursor, int)
        if url.endswith("/versions"):
            assert key == first["items"][0]["version"]
        else:  # the standard's id, which keeps counting across tests (ids are never reused)
            assert isinstance(key, int) and key >= 1
        rest = client.get(url, params={"limit": 1, "cursor": cursor}, headers=viewer).json()
        assert len(rest["items"]) == 1 and rest["next_cursor"] is None
        everything = client.get(url, params={"limit": 10**12}, headers=viewer)
        assert everything.status_code == 200 and len(everything.json()["items"]) == 2
        assert_error(client.get(url, params={"limit": 0}, headers=viewer), 422, "invalid")


@pytest.mark.parametrize("cursor", BAD_CURSORS)
@pytest.mark.parametrize(
    "path", ["/standards", f"/standards/{NAME}/versions", "/keys", "/audit", "/studies"]
)
def test_bad_cursors_are_422_on_every_list(
    client: TestClient, team: Team, path: str, cursor: str
) -> None:
    created(publish(client, team))
    error = assert_error(
        client.get(f"{API}{path}", params={"cursor": cursor}, headers=team.headers("admin")),
        422,
        "invalid",
    )
    assert error["details"][0]["field"] == "cursor"
