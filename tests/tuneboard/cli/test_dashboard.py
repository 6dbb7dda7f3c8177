"""``tuneboard dashboard``: a live optuna-dashboard on the store, read-only, for one team."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import httpx
import optuna_dashboard
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.main import create_app
from tests.api.conftest import API, BROKER_URL
from tests.tuneboard.optimization.readonly_data import REMOTE_METRICS, Store, seed, snapshot
from tuneboard.cli import app as cli
from tuneboard.config import Settings
from tuneboard.db.base import Base
from tuneboard.db.engine import get_engine
from tuneboard.optimization.readonly import READ_ONLY_MESSAGE, TRIAL_FIELDS, ReadOnlyStorage


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Store:
    return seed(db_url, tmp_path)


def _dashboard(url: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TUNEBOARD_DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "tuneboard.cli", "dashboard", "--port", "0", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.fixture
def dashboard(store: Store) -> Iterator[str]:
    """The base URL of `tuneboard dashboard --team alpha`, on a free port."""
    proc = _dashboard(store.url, "--team", "alpha")
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+)/dashboard", banner)
        assert found, (banner, proc.stderr.read() if proc.poll() is not None else "")
        assert "read-only" in banner and "team 'alpha'" in banner
        base = found.group(1)
        for _ in range(100):
            try:
                httpx.get(f"{base}/api/meta", timeout=5).raise_for_status()
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_it_shows_our_names_metric_names_and_trial_fields(store: Store, dashboard: str) -> None:
    listed = httpx.get(f"{dashboard}/api/studies").json()["study_summaries"]
    assert {s["study_id"]: s["study_name"] for s in listed} == {
        store.mlp: f"digits-mlp #{store.mlp}",
        store.mlp_again: f"digits-mlp #{store.mlp_again}",
        store.multi: "digits-mo",
        store.remote: "remote-study",
    }

    multi = httpx.get(f"{dashboard}/api/studies/{store.multi}").json()
    assert multi["name"] == "digits-mo"
    assert multi["objective_names"] == ["val_accuracy", "epoch_time_s"]
    remote = httpx.get(f"{dashboard}/api/studies/{store.remote}").json()
    assert remote["objective_names"] == REMOTE_METRICS

    mlp = httpx.get(f"{dashboard}/api/studies/{store.mlp}").json()
    assert mlp["objective_names"] == ["val_accuracy"]
    first = next(t for t in mlp["trials"] if t["trial_id"] == store.mlp_trial_ids[0])
    attrs = {a["key"]: a["value"] for a in first["user_attrs"]}
    assert set(attrs) == set(TRIAL_FIELDS)
    assert attrs["epochs_run"] == "3" and attrs["device"] == "cpu" and attrs["accepted"] == "True"
    assert json.loads(attrs["verdict"])["standard"] == "s@1"
    assert {a["key"] for a in mlp["union_user_attrs"]} == set(TRIAL_FIELDS)

    # Plots and CSV load the study by the name shown, which must lead back to the same study.
    plot = httpx.get(f"{dashboard}/api/studies/{store.mlp_again}/plot/slice")
    assert plot.status_code == 200, plot.text
    pareto = httpx.get(f"{dashboard}/api/studies/{store.multi}/plot/pareto_front")
    assert pareto.status_code == 200, pareto.text
    csv = httpx.get(f"{dashboard}/csv/{store.mlp}").text
    assert csv.splitlines()[0].startswith("Number,State,val_accuracy,")


def test_other_teams_studies_are_not_there(store: Store, dashboard: str) -> None:
    for path in (f"/api/studies/{store.beta_study}", f"/api/studies/{store.beta_study}/plot/slice",
                 f"/api/studies/{store.beta_study}/param_importances", f"/csv/{store.beta_study}"):
        response = httpx.get(dashboard + path)
        assert response.status_code in (404, 500), (path, response.status_code)
        assert "digits-mlp" not in response.text


def _writes(store: Store) -> list[tuple[str, str, dict[str, Any] | None]]:
    trial_id = store.mlp_trial_ids[0]
    return [
        ("POST", f"/api/studies/{store.mlp}/rename", {"study_name": "renamed"}),
        ("DELETE", f"/api/studies/{store.mlp}", None),
        ("POST", "/api/studies", {"study_name": "new", "directions": ["minimize"]}),
        ("PUT", f"/api/studies/{store.mlp}/note", {"version": 1, "body": "hi"}),
        ("PUT", f"/api/studies/{store.mlp}/{trial_id}/note", {"version": 1, "body": "hi"}),
        ("POST", f"/api/trials/{trial_id}/tell", {"state": "Fail"}),
        ("POST", f"/api/trials/{trial_id}/user-attrs", {"user_attrs": {"k": 1}}),
    ]


def _tables(url: str) -> set[str]:
    with get_engine(url).connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def test_writes_answer_403_and_change_nothing(store: Store, dashboard: str, tmp_path: Path) -> None:
    before = snapshot(store.url)
    for method, path, body in _writes(store):
        response = httpx.request(method, dashboard + path, json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json() == {"reason": READ_ONLY_MESSAGE}
    assert snapshot(store.url) == before
    # Our API still has the study and its curves; optuna-dashboard made no table of its own.
    settings = Settings(database_url=store.url, broker_url=BROKER_URL, home=tmp_path,
                        environment="test")
    with TestClient(create_app(settings)) as client:
        study = client.get(f"{API}/studies/{store.mlp}", headers=store.alpha_headers)
        assert study.status_code == 200 and study.json()["name"] == "digits-mlp"
        curves = client.get(f"{API}/studies/{store.mlp}/trials/0/metrics",
                            headers=store.alpha_headers)
        assert curves.status_code == 200 and len(curves.json()["items"]) == 3, curves.text
    assert _tables(store.url) <= {*Base.metadata.tables, "alembic_version"}


def _call(app: Callable[..., Any], method: str, path: str, body: dict[str, Any] | None) -> str:
    raw = json.dumps(body).encode() if body is not None else b""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw)), "wsgi.input": io.BytesIO(raw),
    }
    setup_testing_defaults(environ)
    status: list[str] = []
    b"".join(app(environ, lambda s, _headers, _exc=None: status.append(s)))
    return status[0]


def test_the_storage_alone_stops_the_writes(store: Store) -> None:
    """Without the 403 in front, optuna-dashboard's own views reach the storage, which refuses."""
    app = optuna_dashboard.wsgi(ReadOnlyStorage(store.url, team_id=store.alpha))
    before = snapshot(store.url)
    for method, path, body in _writes(store):
        status = _call(app, method, path, body)
        assert not status.startswith("2"), (method, path, status)
    assert snapshot(store.url) == before
    assert _call(app, "GET", f"/api/studies/{store.mlp}", None).startswith("200")


def test_several_teams_need_team(store: Store) -> None:
    proc = _dashboard(store.url)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "several teams (alpha, beta)" in err and "--team" in err
    proc = _dashboard(store.url, "--team", "nobody")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "team 'nobody' does not exist" in err


def test_a_database_without_our_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    proc = _dashboard(f"sqlite:///{path}")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "has no Tuneboard schema" in err
    assert path.stat().st_size == 0


def test_without_the_extra_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # as if it were not installed
    result = CliRunner().invoke(cli, ["dashboard"])
    assert result.exit_code == 1
    assert "pip install 'tuneboard[dashboard]'" in result.stderr
