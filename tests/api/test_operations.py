from __future__ import annotations

from collections.abc import Iterator

from fastapi.testclient import TestClient

from api.main import create_app
from tests.api.conftest import API, SPEC, Team, create_study, run_trials
from tests.api.test_auth import assert_error
from tuneboard.config import Settings


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz(client: TestClient, settings: Settings) -> None:
    ok = {"database": "ok", "schema": "ok", "broker": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "checks": ok}
    broken = settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(broken)) as other:
        response = other.get("/readyz")
        error = assert_error(response, 503, "unavailable")
        assert error["details"]["database"] == "ok"
        assert error["details"]["broker"].startswith("down: ")


def test_readyz_on_an_unmigrated_database(settings: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    fresh = settings.model_copy(
        update={
            "database_url": f"sqlite:///{tmp_path / 'fresh.db'}",
            "broker_url": f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        }
    )
    with TestClient(create_app(fresh)) as other:
        error = assert_error(other.get("/readyz"), 503, "unavailable")
        assert error["details"]["schema"].startswith("down: schema: not migrated")
        assert error["details"]["broker"] == "ok"
        assert other.get("/healthz").status_code == 200


def test_metrics(client: TestClient, team: Team, db_url: str) -> None:
    study_id = create_study(client, team)
    run_trials(db_url, study_id, [0.5, None], metrics=False)
    client.get(f"{API}/studies/{study_id}", headers=team.headers())
    client.get(f"{API}/studies/{study_id + 1000}", headers=team.headers())
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert (
        'tuneboard_http_requests_total{method="GET",route="/api/v1/studies/{study_id}",'
        'status="200"} 1.0'
    ) in text
    assert 'route="/api/v1/studies/{study_id}",status="404"' in text
    assert 'tuneboard_http_request_duration_seconds_bucket{le="0.005",method="POST"' in text
    assert 'tuneboard_trials{state="complete"} 1.0' in text
    assert 'tuneboard_trials{state="pruned"} 1.0' in text
    assert 'tuneboard_trials{state="waiting"} 0.0' in text


def test_body_over_the_limit_is_413(client: TestClient, team: Team) -> None:
    big = {**SPEC, "description": "x" * (1024 * 1024)}
    response = client.post(f"{API}/studies", json=big, headers=team.headers("member"))
    assert_error(response, 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:
        yield b'{"name": "x", "description": "'
        for _ in range(20):
            yield b"y" * 65536
        yield b'"}'

    streamed = client.post(
        f"{API}/studies",
        content=chunks(),
        headers={**team.headers("member"), "Content-Type": "application/json"},
    )
    assert "content-length" not in streamed.request.headers
    assert_error(streamed, 413, "payload_too_large")


def test_error_shape_for_routing_errors(client: TestClient, team: Team) -> None:
    assert_error(client.get(f"{API}/nothing-here", headers=team.headers()), 404, "not_found")
    response = client.delete(f"{API}/studies", headers=team.headers())
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"]


def test_audit_log_pages(client: TestClient, team: Team) -> None:
    study_id = create_study(client, team)
    client.post(f"{API}/studies/{study_id}/cancel", headers=team.headers("member"))
    entries, cursor = [], None
    while True:
        page = client.get(
            f"{API}/audit", params={"limit": 2, "cursor": cursor}, headers=team.headers()
        ).json()
        assert set(page) == {"items", "next_cursor"}
        entries += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    actions = [e["action"] for e in entries]
    assert actions[:2] == ["study.cancel", "study.create"]
    assert actions.count("key.create") == 4 and actions[-1] == "team.create"
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)


def test_openapi_documents_the_spec(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/api/v1/studies"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/StudySpec"}
    assert body["examples"]["digits-mlp"]["value"]["name"] == "digits-mlp"
    assert "StudySpec" in schema["components"]["schemas"]
    assert "bearer" in str(schema["components"]["securitySchemes"]).lower()
    for path in [
        "/api/v1/studies/{study_id}/leaderboard",
        "/api/v1/leaderboard",
        "/api/v1/audit",
        "/api/v1/studies/{study_id}/trials/{number}/metrics",
        "/healthz",
        "/readyz",
    ]:
        assert path in schema["paths"]
    assert client.get("/docs").status_code == 200


def test_ui_pages_render(client: TestClient) -> None:
    for path in [
        "/ui/studies",
        "/ui/studies/3",
        "/ui/leaderboard",
        "/ui/standards",
        "/ui/standards/vision-baseline",
    ]:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "/ui/static/app.js" in response.text
        assert "http://" not in response.text and "https://" not in response.text
    assert client.get("/ui", follow_redirects=False).status_code in (302, 307)
    for asset in ["app.js", "charts.js", "style.css"]:
        assert client.get(f"/ui/static/{asset}").status_code == 200
    assert client.get("/ui/studies/abc").status_code == 422
