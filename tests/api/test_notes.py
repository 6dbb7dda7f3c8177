"""Notes on studies and trials over HTTP: roles, team isolation, the audit log, pagination."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import API, Team, create_study, run_trials
from tests.api.test_auth import assert_error
from tuneboard.db.models import NOTE_MAX_LENGTH


def _notes(client: TestClient, path: str, team: Team, **params: object) -> dict:
    response = client.get(f"{API}{path}", params=params, headers=team.headers("viewer"))
    assert response.status_code == 200, response.text
    body: dict = response.json()
    return body


def test_members_write_viewers_read(client: TestClient, team: Team, db_url: str) -> None:
    study_id = create_study(client, team)
    (number,) = run_trials(db_url, study_id, [0.9], metrics=False)
    base = f"{API}/studies/{study_id}"

    on_study = client.post(f"{base}/notes", json={"body": "lr above 0.01 diverges"},
                           headers=team.headers("member"))
    assert on_study.status_code == 201, on_study.text
    note = on_study.json()
    assert note["study_id"] == study_id and note["trial_number"] is None
    assert note["body"] == "lr above 0.01 diverges"
    assert note["author"] == f"key:{team.key_ids['member']}"
    assert note["created_at"].endswith("Z")

    on_trial = client.post(f"{base}/trials/{number}/notes", json={"body": "ünïcode ✓ kept"},
                           headers=team.headers("member"))
    assert on_trial.status_code == 201, on_trial.text
    assert on_trial.json()["trial_number"] == number

    assert_error(client.post(f"{base}/notes", json={"body": "no"}, headers=team.headers("viewer")),
                 403, "forbidden")
    assert_error(client.post(f"{base}/trials/{number}/notes", json={"body": "no"},
                             headers=team.headers("viewer")), 403, "forbidden")

    study_notes = _notes(client, f"/studies/{study_id}/notes", team)
    assert [(n["trial_number"], n["body"]) for n in study_notes["items"]] == [
        (number, "ünïcode ✓ kept"), (None, "lr above 0.01 diverges"),
    ]
    assert study_notes["next_cursor"] is None
    trial_notes = _notes(client, f"/studies/{study_id}/trials/{number}/notes", team)
    assert [n["body"] for n in trial_notes["items"]] == ["ünïcode ✓ kept"]

    assert_error(client.get(f"{base}/trials/999/notes", headers=team.headers("viewer")),
                 404, "not_found")
    assert_error(client.post(f"{base}/trials/999/notes", json={"body": "x"},
                             headers=team.headers("member")), 404, "not_found")


def test_another_teams_study_is_not_found(
    client: TestClient, team: Team, other_team: Team, db_url: str
) -> None:
    study_id = create_study(client, team)
    (number,) = run_trials(db_url, study_id, [0.9], metrics=False)
    client.post(f"{API}/studies/{study_id}/notes", json={"body": "ours"},
                headers=team.headers("member"))
    for path in (f"/studies/{study_id}/notes", f"/studies/{study_id}/trials/{number}/notes"):
        assert_error(client.get(f"{API}{path}", headers=other_team.headers("admin")),
                     404, "not_found")
        assert_error(client.post(f"{API}{path}", json={"body": "theirs"},
                                 headers=other_team.headers("admin")), 404, "not_found")
    assert [n["body"] for n in _notes(client, f"/studies/{study_id}/notes", team)["items"]] == [
        "ours"
    ]


def test_each_note_is_audited(client: TestClient, team: Team, db_url: str) -> None:
    study_id = create_study(client, team)
    (number,) = run_trials(db_url, study_id, [0.9], metrics=False)
    first = client.post(f"{API}/studies/{study_id}/notes", json={"body": "a"},
                        headers=team.headers("member")).json()
    second = client.post(f"{API}/studies/{study_id}/trials/{number}/notes", json={"body": "b"},
                         headers=team.headers("maintainer")).json()
    entries = client.get(f"{API}/audit", headers=team.headers("admin")).json()["items"]
    noted = [e for e in entries if e["action"] == "note.create"]
    assert [(e["object_type"], e["object_id"], e["actor"], e["details"]) for e in noted] == [
        ("note", str(second["id"]), f"key:{team.key_ids['maintainer']}",
         {"study_id": study_id, "trial_number": number}),
        ("note", str(first["id"]), f"key:{team.key_ids['member']}",
         {"study_id": study_id, "trial_number": None}),
    ]


def test_notes_page_newest_first(client: TestClient, team: Team) -> None:
    study_id = create_study(client, team)
    for i in range(5):
        response = client.post(f"{API}/studies/{study_id}/notes", json={"body": f"note {i}"},
                               headers=team.headers("member"))
        assert response.status_code == 201
    seen, cursor = [], None
    while True:
        params: dict[str, object] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = _notes(client, f"/studies/{study_id}/notes", team, **params)
        assert len(body["items"]) <= 2
        seen += [n["body"] for n in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"note {i}" for i in reversed(range(5))]
    assert_error(client.get(f"{API}/studies/{study_id}/notes", params={"cursor": "bm9wZQ"},
                            headers=team.headers("viewer")), 422, "invalid")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"body": ""}, "at least 1 character"),
        ({"body": "   \n"}, "must not be blank"),
        ({"body": "x" * (NOTE_MAX_LENGTH + 1)}, f"at most {NOTE_MAX_LENGTH} characters"),
        ({"body": "a\x00b"}, "NUL"),
        ({"body": 3}, "valid string"),
        ({}, "required"),
        ({"body": "x", "pinned": True}, "not permitted"),
    ],
)
def test_bad_notes_are_422_naming_the_field(
    client: TestClient, team: Team, body: dict, reason: str
) -> None:
    study_id = create_study(client, team)
    error = assert_error(client.post(f"{API}/studies/{study_id}/notes", json=body,
                                     headers=team.headers("member")), 422, "invalid")
    assert any(reason in d["reason"] for d in error["details"]), error
    assert _notes(client, f"/studies/{study_id}/notes", team)["items"] == []


def test_a_lone_surrogate_is_refused(client: TestClient, team: Team) -> None:
    study_id = create_study(client, team)
    response = client.post(
        f"{API}/studies/{study_id}/notes", content=b'{"body": "bad \\ud800 text"}',
        headers={**team.headers("member"), "Content-Type": "application/json"},
    )
    error = assert_error(response, 422, "invalid")
    assert error["details"][0]["field"] == "body"
    assert _notes(client, f"/studies/{study_id}/notes", team)["items"] == []
