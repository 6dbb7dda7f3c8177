"""The CLI's client commands against a live server (uvicorn in a thread, real HTTP)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI
from typer.testing import CliRunner

from tests.api.conftest import SPEC, Team, run_trials, spec
from tests.live_server import serve
from tuneboard.cli import app as cli
from tuneboard.client import ApiError, TuneboardClient

runner = CliRunner()


@pytest.fixture
def live_url(app: FastAPI) -> Iterator[str]:
    with serve(app) as url:
        yield url


@pytest.fixture
def env(live_url: str, team: Team, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Team:
    monkeypatch.setenv("TUNEBOARD_URL", live_url)
    monkeypatch.setenv("TUNEBOARD_API_KEY", team.keys["member"])
    monkeypatch.setenv("TUNEBOARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    return team


def write_spec(tmp_path: Path, body: dict, name: str = "study.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(body))
    return path


def test_submit_list_and_leaderboards(env: Team, tmp_path: Path, db_url: str) -> None:
    path = write_spec(tmp_path, SPEC)
    result = runner.invoke(cli, ["submit", str(path), "--json", "--idempotency-key", "k1"])
    assert result.exit_code == 0, result.output
    study = json.loads(result.stdout)
    again = runner.invoke(cli, ["submit", str(path), "--json", "--idempotency-key", "k1"])
    assert json.loads(again.stdout)["id"] == study["id"]

    human = runner.invoke(cli, ["submit", str(write_spec(tmp_path, spec(name="second")))])
    assert human.exit_code == 0
    assert "second" in human.stdout and "tuneboard watch" in human.stdout

    listed = runner.invoke(cli, ["studies", "list", "--json"])
    assert [s["name"] for s in json.loads(listed.stdout)] == ["second", "digits-mlp"]
    table = runner.invoke(cli, ["studies", "list", "--state", "queued"])
    assert table.exit_code == 0 and "digits-mlp" in table.stdout

    run_trials(db_url, study["id"], [0.5, 0.9, 0.7], metrics=False)
    board = runner.invoke(cli, ["leaderboard", str(study["id"]), "--json", "--limit", "2"])
    items = json.loads(board.stdout)["items"]
    assert [(e["rank"], e["value"]) for e in items] == [(1, 0.9), (2, 0.7)]
    shown = runner.invoke(cli, ["leaderboard", str(study["id"])])
    assert shown.exit_code == 0 and "val_accuracy" in shown.stdout and "0.9" in shown.stdout
    team_board = runner.invoke(cli, ["leaderboard", "--json"])
    assert [r["study_id"] for r in json.loads(team_board.stdout)] == [study["id"]]
    assert runner.invoke(cli, ["leaderboard"]).exit_code == 0


def test_watch_follows_until_the_study_ends(
    env: Team, live_url: str, tmp_path: Path, db_url: str
) -> None:
    result = runner.invoke(cli, ["submit", str(write_spec(tmp_path, SPEC)), "--json"])
    study_id = json.loads(result.stdout)["id"]
    run_trials(db_url, study_id, [0.8], metrics=False)

    def stop() -> None:
        time.sleep(0.8)
        with TuneboardClient(live_url, env.keys["member"]) as client:
            client.cancel(study_id)

    stopper = threading.Thread(target=stop)
    stopper.start()
    watched = runner.invoke(cli, ["watch", str(study_id)])
    stopper.join()
    assert watched.exit_code == 1, watched.output
    assert "complete 1" in watched.stdout and "cancelled" in watched.stdout
    assert "best trial #" in watched.stdout

    as_json = runner.invoke(cli, ["watch", str(study_id), "--json"])
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [e["event"] for e in events] == ["progress", "end"]


def test_errors_are_reported(env: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = spec()
    bad["budget"] = {"n_trials": 0}
    result = runner.invoke(cli, ["submit", str(write_spec(tmp_path, bad))])
    assert result.exit_code == 1
    assert "422 invalid" in result.stderr and "budget.n_trials" in result.stderr

    not_a_spec = tmp_path / "list.yaml"
    not_a_spec.write_text("- 1\n- 2\n")
    assert runner.invoke(cli, ["submit", str(not_a_spec)]).exit_code == 1

    assert "404 not_found" in runner.invoke(cli, ["watch", "12345"]).stderr

    monkeypatch.setenv("TUNEBOARD_API_KEY", env.keys["viewer"])
    forbidden = runner.invoke(cli, ["submit", str(write_spec(tmp_path, SPEC))])
    assert forbidden.exit_code == 1 and "403 forbidden" in forbidden.stderr

    monkeypatch.delenv("TUNEBOARD_API_KEY")
    missing = runner.invoke(cli, ["studies", "list"])
    assert missing.exit_code == 1 and "TUNEBOARD_API_KEY" in missing.stderr

    home = tmp_path / "home"
    home.mkdir()
    (home / "api-key").write_text(env.keys["viewer"] + "\n")
    from_file = runner.invoke(cli, ["studies", "list", "--json"])
    assert from_file.exit_code == 0 and json.loads(from_file.stdout) == []

    monkeypatch.setenv("TUNEBOARD_URL", "http://127.0.0.1:1")
    unreachable = runner.invoke(cli, ["studies", "list"])
    assert unreachable.exit_code == 1 and "cannot reach" in unreachable.stderr


def test_a_spec_with_three_problems_names_each_field_once(
    env: Team, live_url: str, tmp_path: Path
) -> None:
    bad = spec()
    bad["budget"] = {"n_trials": 0, "max_parallel": 0}
    bad["objective"] = {**SPEC["objective"], "max_epochs": 0}
    result = runner.invoke(cli, ["submit", str(write_spec(tmp_path, bad))])
    assert result.exit_code == 1
    fields = ("objective.max_epochs", "budget.n_trials", "budget.max_parallel")
    assert result.stderr.splitlines()[0] == "error 422 invalid: 3 problems", result.stderr
    for field in fields:
        assert result.stderr.count(field) == 1, result.stderr

    with TuneboardClient(live_url, env.keys["member"]) as client, pytest.raises(ApiError) as raised:
        client.submit(bad)
    assert raised.value.status == 422
    assert sorted(p.field for p in raised.value.problems) == sorted(fields)
    assert all(p.reason for p in raised.value.problems)
