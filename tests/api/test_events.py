from __future__ import annotations

import json
import threading
import time

from fastapi.testclient import TestClient

from tests.api.conftest import API, Team, create_study, run_trials


def read_events(client: TestClient, url: str, headers: dict[str, str]) -> list[tuple[str, dict]]:
    events = []
    with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name, data = "message", ""
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                data += line.split(":", 1)[1].strip()
            elif not line and data:
                events.append((name, json.loads(data)))
                name, data = "message", ""
    return events


def test_once_sends_one_snapshot(client: TestClient, team: Team) -> None:
    study_id = create_study(client, team)
    events = read_events(
        client, f"{API}/studies/{study_id}/events?once=true", team.headers("viewer")
    )
    assert [name for name, _ in events] == ["progress", "end"]
    progress = events[0][1]
    assert progress["study_id"] == study_id and progress["state"] == "queued"
    assert progress["counts"]["waiting"] == 1 and progress["finished"] is False


def test_stream_follows_changes_and_ends_with_the_study(
    client: TestClient, team: Team, db_url: str
) -> None:
    study_id = create_study(client, team)

    def work() -> None:
        time.sleep(0.7)
        run_trials(db_url, study_id, [0.5], metrics=False)
        time.sleep(0.7)
        client.post(f"{API}/studies/{study_id}/cancel", headers=team.headers("member"))

    worker = threading.Thread(target=work)
    worker.start()
    events = read_events(
        client, f"{API}/studies/{study_id}/events?max_s=20", team.headers("viewer")
    )
    worker.join()
    names = [name for name, _ in events]
    assert names[-1] == "end" and events[-1][1]["state"] == "cancelled"
    progress = [data for name, data in events if name == "progress"]
    assert progress[0]["counts"]["complete"] == 0
    assert any(p["counts"]["complete"] == 1 and p["best_value"] == 0.5 for p in progress)
    assert progress[-1]["finished"] is True
    assert len(progress) == len({json.dumps(p, sort_keys=True) for p in progress})


def test_stream_closes_after_max_s(client: TestClient, team: Team) -> None:
    study_id = create_study(client, team)
    start = time.monotonic()
    events = read_events(
        client, f"{API}/studies/{study_id}/events?max_s=0.6", team.headers("viewer")
    )
    assert time.monotonic() - start < 5
    assert [name for name, _ in events] == ["progress"]
