"""Bodies the server must refuse with 422 naming the field, never a 500: text that is not valid
Unicode (a lone surrogate escape, or bytes that are not UTF-8). Real encodable text, including
characters written as a surrogate pair, passes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.errors import error_response
from tests.api.conftest import API, SPEC, Team, create_study, spec
from tests.api.test_auth import assert_error

LONE = "\ud800"


def post_json(client: TestClient, path: str, body: Any, team: Team) -> Any:
    # json.dumps writes the lone surrogate as the escape "\ud800", as a client would send it.
    return client.post(path, content=json.dumps(body), headers={
        **team.headers("member"), "Content-Type": "application/json"})


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": f"bad{LONE}"}, "name"),
        ({"description": LONE}, "description"),
        ({"tags": ["ok", f"x{LONE}"]}, "tags.1"),
        ({"fixed": {"weight_decay": LONE}}, "fixed.weight_decay"),
        ({"fixed": {f"w{LONE}": 0.1}}, "fixed.w\\ud800"),
        ({"search_space": {**SPEC["search_space"], f"p{LONE}": {"type": "float", "low": 0,
                                                                  "high": 1}}},
         "search_space.p\\ud800"),
    ],
)
def test_a_lone_surrogate_in_a_study_is_422(
    client: TestClient, team: Team, changes: dict[str, Any], field: str
) -> None:
    error = assert_error(post_json(client, f"{API}/studies", spec(**changes), team), 422,
                         "invalid")
    assert error["details"][0]["field"] == field
    assert "Unicode" in error["details"][0]["reason"]
    assert client.get(f"{API}/studies", headers=team.headers()).json()["items"] == []


def test_a_lone_surrogate_in_a_trial_param_is_422(client: TestClient, team: Team) -> None:
    study_id = create_study(client, team)
    body = {"params": {f"lr{LONE}": 0.01, "optimizer": "adam", "hidden": 64}}
    error = assert_error(post_json(client, f"{API}/studies/{study_id}/trials", body, team), 422,
                         "invalid")
    assert error["details"][0]["field"] == "params.lr\\ud800"
    body = {"params": {"lr": 0.01, "optimizer": f"adam{LONE}", "hidden": 64}}
    error = assert_error(post_json(client, f"{API}/studies/{study_id}/trials", body, team), 422,
                         "invalid")
    assert error["details"][0]["field"] == "params.optimizer"


def test_bytes_that_are_not_utf8_are_422(client: TestClient, team: Team) -> None:
    raw = json.dumps(spec(name="NAME")).encode().replace(b"NAME", b"\xed\xa0\x80")
    response = client.post(f"{API}/studies", content=raw, headers={
        **team.headers("member"), "Content-Type": "application/json"})
    error = assert_error(response, 422, "invalid")
    assert "UTF-8" in error["details"][0]["reason"]


def test_a_surrogate_pair_is_text(client: TestClient, team: Team) -> None:
    response = post_json(client, f"{API}/studies", spec(description="grin \U0001f600"), team)
    assert response.status_code == 201, response.text
    assert response.json()["spec"]["description"] == "grin \U0001f600"


def test_an_error_can_echo_any_string() -> None:
    response = error_response(422, "invalid", f"params.{LONE}: unknown", [{"field": LONE}])
    body = json.loads(response.body)
    assert body["error"]["message"] == "params.\\ud800: unknown"
    assert body["error"]["details"] == [{"field": "\\ud800"}]
