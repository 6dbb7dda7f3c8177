"""Webhooks over HTTP: admin only, scoped to the team, audited, and fed by the real routes; the
deliveries reach a real local HTTP receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import API, Team
from tests.api.test_auth import assert_error
from tests.tuneboard.webhooks.receiver import Receiver
from tuneboard import webhooks

DOCUMENT = {"name": "house-rules", "rules": [], "changelog": "first"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver.on_free_port().start()
    yield receiver
    receiver.stop()


def _register(client: TestClient, team: Team, url: str, events: list[str]) -> dict:
    response = client.post(f"{API}/webhooks", json={"url": url, "events": events},
                           headers=team.headers("admin"))
    assert response.status_code == 201, response.text
    body: dict = response.json()
    return body


def test_register_list_and_delete(client: TestClient, team: Team) -> None:
    created = _register(client, team, "https://ci.example.com/hook",
                        ["study.finished", "trial.best_accepted", "study.finished"])
    assert created["events"] == ["study.finished", "trial.best_accepted"]
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["active"] is True and created["created_by"]
    second = _register(client, team, "http://127.0.0.1:9/x", ["standard.deprecated"])

    first_page = client.get(f"{API}/webhooks?limit=1", headers=team.headers()).json()
    assert [h["id"] for h in first_page["items"]] == [created["id"]]
    assert "secret" not in first_page["items"][0]  # shown once, at creation
    rest = client.get(f"{API}/webhooks?cursor={first_page['next_cursor']}",
                      headers=team.headers()).json()
    assert [h["id"] for h in rest["items"]] == [second["id"]] and rest["next_cursor"] is None

    assert client.delete(f"{API}/webhooks/{created['id']}", headers=team.headers()).status_code \
        == 204
    listed = client.get(f"{API}/webhooks", headers=team.headers()).json()["items"]
    assert [h["id"] for h in listed] == [second["id"]]
    assert_error(client.delete(f"{API}/webhooks/{created['id']}", headers=team.headers()),
                 404, "not_found")

    entries = client.get(f"{API}/audit", headers=team.headers()).json()["items"]
    actions = [(e["action"], e["object_id"]) for e in entries if e["object_type"] == "webhook"]
    assert actions == [("webhook.delete", str(created["id"])),
                       ("webhook.create", str(second["id"])),
                       ("webhook.create", str(created["id"]))]
    assert all(created["secret"] not in str(e["details"]) for e in entries)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/x", "events": ["study.finished"]}, "url"),
        ({"url": "http://", "events": ["study.finished"]}, "url"),
        ({"url": "https://u:p@example.com/", "events": ["study.finished"]}, "url"),
        ({"url": "https://example.com/a b\x00", "events": ["study.finished"]}, "url"),
        ({"url": "https://example.com/", "events": []}, "events"),
        ({"url": "https://example.com/", "events": ["study.started"]}, "events.0"),
        ({"url": "https://example.com/", "events": ["study.finished"], "x": 1}, "x"),
    ],
)
def test_bad_registrations_are_422_at_their_field(
    client: TestClient, team: Team, body: dict, field: str
) -> None:
    error = assert_error(client.post(f"{API}/webhooks", json=body, headers=team.headers()),
                         422, "invalid")
    assert any(d["field"].endswith(field) for d in error["details"]), error


@pytest.mark.parametrize("role", ["viewer", "member", "maintainer"])
def test_webhooks_need_admin(client: TestClient, team: Team, role: str) -> None:
    hook = _register(client, team, "https://ci.example.com/hook", ["study.finished"])
    headers = team.headers(role)
    body = {"url": "https://ci.example.com/hook", "events": ["study.finished"]}
    for response in (
        client.post(f"{API}/webhooks", json=body, headers=headers),
        client.get(f"{API}/webhooks", headers=headers),
        client.delete(f"{API}/webhooks/{hook['id']}", headers=headers),
        client.get(f"{API}/webhooks/{hook['id']}/deliveries", headers=headers),
    ):
        assert_error(response, 403, "forbidden")


def test_another_teams_webhook_is_not_found(
    client: TestClient, team: Team, other_team: Team
) -> None:
    hook = _register(client, team, "https://ci.example.com/hook", ["study.finished"])
    theirs = other_team.headers()
    assert client.get(f"{API}/webhooks", headers=theirs).json()["items"] == []
    assert_error(client.get(f"{API}/webhooks/{hook['id']}/deliveries", headers=theirs),
                 404, "not_found")
    assert_error(client.delete(f"{API}/webhooks/{hook['id']}", headers=theirs), 404, "not_found")
    assert client.get(f"{API}/webhooks", headers=team.headers()).json()["items"][0]["active"]


def test_a_published_standard_reaches_the_receiver_signed(
    client: TestClient, team: Team, other_team: Team, receiver: Receiver, db_url: str
) -> None:
    hook = _register(client, team, receiver.url, ["standard.published", "standard.deprecated"])
    _register(client, other_team, receiver.url, ["standard.published"])
    maintainer = team.headers("maintainer")
    assert client.post(f"{API}/standards", json=DOCUMENT, headers=maintainer).status_code == 201
    deprecate = f"{API}/standards/house-rules/versions/1/deprecate"
    assert client.post(deprecate, headers=maintainer).status_code == 200

    deliveries = f"{API}/webhooks/{hook['id']}/deliveries"
    pending = client.get(deliveries, headers=team.headers()).json()["items"]
    assert [(d["event"], d["state"], d["attempts"]) for d in pending] == [
        ("standard.deprecated", "pending", 0), ("standard.published", "pending", 0)
    ]

    assert webhooks.deliver_due(db_url).delivered == 2
    assert len(receiver.requests) == 2  # the other team's hook was owed nothing
    assert all(r.signed_with(hook["secret"]) for r in receiver.requests)
    published = next(r for r in receiver.requests
                     if r.headers["x-tuneboard-event"] == "standard.published")
    assert published.json()["data"]["standard"] == "house-rules@1"

    done = client.get(deliveries, headers=team.headers()).json()["items"]
    assert {(d["state"], d["attempts"], d["last_status"]) for d in done} == {
        ("delivered", 1, 200)
    }
    assert all(d["delivered_at"].endswith("Z") or "+00:00" in d["delivered_at"] for d in done)
    assert {str(d["id"]) for d in done} == {
        r.headers["x-tuneboard-delivery"] for r in receiver.requests
    }
    page = client.get(f"{deliveries}?limit=1", headers=team.headers()).json()
    assert [d["id"] for d in page["items"]] == [done[0]["id"]] and page["next_cursor"]
