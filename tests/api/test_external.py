"""External studies over real HTTP (a live uvicorn server) on both databases: clients ask for
trials, report, beat and tell; the pruner, the standard's verdicts, the lease and the reaper."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy import event

from tests.api.conftest import API, SPEC, Team, bearer
from tests.live_server import serve, serve_process
from tuneboard.config import Settings
from tuneboard.db import get_engine, is_sqlite, session_scope, utcnow
from tuneboard.db.models import Study, Trial
from workers import reaper

LEASE_S = 1.0
# A Redis database no other test module uses: the test checks that nothing is sent to workers.
BROKER_URL = "redis://127.0.0.1:6379/11"

EXTERNAL: dict[str, Any] = {
    "name": "bring-your-own-loop",
    "objective": {"external": True, "metric": "val_accuracy", "direction": "maximize",
                  "max_epochs": 5},
    "search_space": {
        "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
        "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
    },
    "fixed": {"weight_decay": 0.0},
    "sampler": {"type": "random", "seed": 3},
    "pruner": {"type": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
    "budget": {"n_trials": 6, "max_parallel": 2, "max_retries": 1},
}

STANDARD: dict[str, Any] = {
    "name": "house-rules",
    "description": "What an accepted result shows.",
    "rules": [{"param": "lr", "range": {"low": 1e-4, "high": 1e-1, "log": True}}],
    # Worker-only defaults: an external study takes none of them, and is not refused for them.
    "defaults": {"early_stopping": {"monitor": "val_loss", "mode": "min", "patience": 3}},
    "acceptance": [
        {"metric": "val_accuracy", "op": ">=", "value": 0.8},
        {"metric": "val_loss", "op": "<=", "value": 0.5},
    ],
}


def external(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(EXTERNAL)
    body.update(changes)
    return body


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db_url, broker_url=BROKER_URL, home=tmp_path,
                    environment="test", lease_s=LEASE_S)


@pytest.fixture
def url(app: FastAPI) -> Iterator[str]:
    redis.Redis.from_url(BROKER_URL).flushdb()
    with serve(app) as base:
        yield base + API
    redis.Redis.from_url(BROKER_URL).flushdb()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


class Api:
    """One key's view of the API over HTTP."""

    def __init__(self, http: httpx.Client, url: str, key: str) -> None:
        self.http, self.url, self.headers = http, url, bearer(key)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.http.post(self.url + path, json=body, headers=self.headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(self.url + path, headers=self.headers, **kwargs)

    def create(self, body: dict[str, Any]) -> int:
        response = self.post("/studies", body)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def ask(self, study_id: int) -> dict[str, Any]:
        response = self.post(f"/studies/{study_id}/trials/ask")
        assert response.status_code == 201, response.text
        return dict(response.json())

    def report(self, study_id: int, number: int, step: int, **metrics: float) -> dict[str, Any]:
        response = self.post(f"/studies/{study_id}/trials/{number}/report",
                             {"step": step, "metrics": metrics})
        assert response.status_code == 200, response.text
        return dict(response.json())

    def tell(self, study_id: int, number: int, **body: Any) -> httpx.Response:
        return self.post(f"/studies/{study_id}/trials/{number}/tell", body)


def member(http: httpx.Client, url: str, team: Team, role: str = "member") -> Api:
    return Api(http, url, team.keys[role])


def problems(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {d["field"]: d["reason"] for d in response.json()["error"]["details"]}


def test_a_whole_external_study_prunes_judges_and_settles(
    http: httpx.Client, url: str, team: Team
) -> None:
    maintainer = member(http, url, team, "maintainer")
    assert maintainer.post("/standards", STANDARD).status_code == 201, "standard"
    api = member(http, url, team)
    study_id = api.create(external(standard="house-rules", budget={"n_trials": 6,
                                                                   "max_parallel": 1}))
    detail = api.get(f"/studies/{study_id}").json()
    assert detail["spec"]["early_stopping"] is None  # the standard's worker default is not taken

    pruned_seen = 0
    numbers = []
    for i in range(6):
        trial = api.ask(study_id)
        numbers.append(trial["number"])
        assert set(trial["params"]) == {"lr", "optimizer", "weight_decay"}
        assert 1e-4 <= trial["params"]["lr"] <= 1e-1 and trial["params"]["weight_decay"] == 0.0
        good = i % 2 == 0
        state = "complete"
        for step in range(5):
            accuracy = 0.9 + 0.01 * step if good else 0.1
            answer = api.report(study_id, trial["number"], step, val_accuracy=accuracy,
                                val_loss=0.2 if good else 2.0)
            assert answer["should_stop"] is False
            if answer["should_prune"]:
                state = "pruned"
                pruned_seen += 1
                break
        body: dict[str, Any] = {"state": state}
        if state == "complete":
            body["metrics"] = {"val_accuracy": 0.95 if good else 0.1}
        told = api.tell(study_id, trial["number"], **body)
        assert told.status_code == 200, told.text
        assert told.json()["state"] == state
        if state == "complete":
            assert told.json()["accepted"] is good, told.json()["verdict"]

    # Trials 0 and 2 are good; bad trials after the first two complete fall below the median.
    assert pruned_seen >= 1
    assert numbers == sorted(set(numbers))
    after = api.post(f"/studies/{study_id}/trials/ask")
    assert after.status_code == 409 and "Retry-After" not in after.headers
    assert after.json()["error"]["details"]["reason"] == "study_finished"
    study = api.get(f"/studies/{study_id}").json()
    assert study["state"] == "completed"
    assert study["counts"]["complete"] + study["counts"]["pruned"] == 6
    board = api.get(f"/studies/{study_id}/leaderboard", params={"accepted_only": True}).json()
    assert [row["number"] for row in board["items"]][:1] in ([0], [2], [4])
    assert redis.Redis.from_url(BROKER_URL).llen("default") == 0  # no worker was sent a trial


def test_a_retried_report_is_stored_once_and_bad_input_is_422(
    http: httpx.Client, url: str, team: Team
) -> None:
    api = member(http, url, team)
    study_id = api.create(external(objective={**EXTERNAL["objective"],
                                              "reports": ["val_accuracy", "val_loss"]}))
    trial = api.ask(study_id)
    n = trial["number"]
    path = f"/studies/{study_id}/trials/{n}"
    first = api.report(study_id, n, 0, val_accuracy=0.5, val_loss=1.0)
    again = api.report(study_id, n, 0, val_accuracy=0.5, val_loss=1.0)
    assert first == again
    listed = api.post(f"{path}/report", [{"step": 1, "metrics": {"val_accuracy": 0.6}},
                                         {"step": 2, "metrics": {"val_accuracy": 0.7}}])
    assert listed.status_code == 200, listed.text
    assert api.report(study_id, n, 2, val_accuracy=0.7)["should_prune"] is False  # a retry
    metrics = api.get(f"{path}/metrics").json()["items"]
    assert [(m["step"], m["metrics"]) for m in metrics] == [
        (0, {"val_accuracy": 0.5, "val_loss": 1.0}),
        (1, {"val_accuracy": 0.6}),
        (2, {"val_accuracy": 0.7}),
    ]
    assert api.get(path).json()["epochs_run"] == 2
    assert api.report(study_id, n, 5, val_accuracy=0.8)["should_stop"] is False
    backwards = problems(api.post(f"{path}/report", {"step": 4, "metrics": {"val_accuracy": 0.1}}))
    assert "goes backwards" in backwards["step"]
    assert "metrics.val_los" in problems(api.post(f"{path}/report", {"step": 3, "metrics": {
        "val_los": 0.1}}))
    nan = http.post(url + f"{path}/report",
                    headers={**api.headers, "Content-Type": "application/json"},
                    content=b'{"step": 3, "metrics": {"val_accuracy": NaN}}')
    assert "metrics.val_accuracy" in problems(nan)
    changed = api.tell(study_id, n, state="complete", values=0.7,
                       params={"lr": trial["params"]["lr"] * 2})
    assert "params.lr" in problems(changed)
    assert "values" in problems(api.tell(study_id, n, state="complete", values=[0.1, 0.2]))
    assert "metrics" in problems(api.tell(study_id, n, state="complete",
                                          metrics={"val_loss": 0.3}))
    done = api.tell(study_id, n, state="complete", values=0.7, params=trial["params"])
    assert done.status_code == 200, done.text
    assert done.json()["values"] == [0.7]
    second = api.tell(study_id, n, state="complete", values=0.9)
    assert second.status_code == 409 and second.json()["error"]["details"]["state"] == "complete"
    late = api.post(f"{path}/report", {"step": 9, "metrics": {"val_accuracy": 1.0}})
    assert late.status_code == 409


def test_a_lost_client_is_failed_and_its_params_come_back_as_a_retry(
    http: httpx.Client, url: str, team: Team, settings: Settings
) -> None:
    api = member(http, url, team)
    study_id = api.create(external(budget={"n_trials": 2, "max_parallel": 1, "max_retries": 1}))
    first = api.ask(study_id)
    busy = api.post(f"/studies/{study_id}/trials/ask")
    assert busy.status_code == 409 and busy.headers["Retry-After"] == "1"
    assert busy.json()["error"]["details"]["reason"] == "max_parallel"

    beat = api.post(f"/studies/{study_id}/trials/{first['number']}/heartbeat")
    assert beat.status_code == 200 and beat.json()["should_stop"] is False
    assert beat.json()["lease_expires_at"] > first["lease_expires_at"]
    report = reaper.ReapReport()
    reaper.fail_lost_clients(settings, utcnow(), report)
    assert report.failed == 0  # the lease was just extended

    time.sleep(LEASE_S + 0.2)
    reaper.fail_lost_clients(settings, utcnow(), report)
    assert (report.failed, report.retried) == (1, 1)
    lost = api.get(f"/studies/{study_id}/trials/{first['number']}").json()
    assert lost["state"] == "fail" and lost["error"].startswith("client lost: no report for ")
    gone = api.post(f"/studies/{study_id}/trials/{first['number']}/report",
                    {"step": 0, "metrics": {"val_accuracy": 0.5}})
    assert gone.status_code == 409 and "client lost" in gone.json()["error"]["message"]

    retry = api.ask(study_id)
    assert retry["params"] == first["params"]
    assert (retry["attempt"], retry["retry_of"]) == (2, first["number"])
    assert api.tell(study_id, retry["number"], state="complete", values=0.5).status_code == 200
    last = api.ask(study_id)
    assert last["attempt"] == 1 and last["params"] != first["params"]
    # The budget is handed out; while the last trial runs a poller is told to come back.
    polled = api.post(f"/studies/{study_id}/trials/ask")
    assert polled.status_code == 409 and int(polled.headers["Retry-After"]) >= 1
    assert polled.json()["error"]["details"]["reason"] == "budget_handed_out"
    assert api.tell(study_id, last["number"], state="fail", error="OOM").status_code == 200
    failed = api.get(f"/studies/{study_id}/trials/{last['number']}").json()
    assert failed["error"] == "OOM"
    # The last attempt of a retry is not retried again when its own lease runs out.
    end = api.post(f"/studies/{study_id}/trials/ask")
    assert end.status_code == 409 and "Retry-After" not in end.headers
    assert api.get(f"/studies/{study_id}").json()["state"] == "completed"


def test_cancel_is_seen_by_should_stop(http: httpx.Client, url: str, team: Team) -> None:
    api = member(http, url, team)
    study_id = api.create(external())
    trial = api.ask(study_id)
    assert api.report(study_id, trial["number"], 0, val_accuracy=0.5)["should_stop"] is False
    assert api.post(f"/studies/{study_id}/cancel").status_code == 202
    assert api.report(study_id, trial["number"], 1, val_accuracy=0.6)["should_stop"] is True
    beat = api.post(f"/studies/{study_id}/trials/{trial['number']}/heartbeat")
    assert beat.json()["should_stop"] is True
    refused = api.post(f"/studies/{study_id}/trials/ask")
    assert refused.status_code == 409 and "Retry-After" not in refused.headers
    assert api.tell(study_id, trial["number"], state="pruned").status_code == 200
    assert api.get(f"/studies/{study_id}").json()["state"] == "cancelled"


def test_isolation_roles_and_worker_studies(
    http: httpx.Client, url: str, team: Team, other_team: Team
) -> None:
    api = member(http, url, team)
    study_id = api.create(external())
    trial = api.ask(study_id)
    n = trial["number"]
    stranger = member(http, url, other_team)
    for path in ("/trials/ask", f"/trials/{n}/report", f"/trials/{n}/heartbeat",
                 f"/trials/{n}/tell"):
        body = {"step": 0, "metrics": {"val_accuracy": 1.0}} if path.endswith("report") else (
            {"state": "complete", "values": 1.0} if path.endswith("tell") else None)
        assert stranger.post(f"/studies/{study_id}{path}", body).status_code == 404, path
        viewer = member(http, url, team, "viewer")
        assert viewer.post(f"/studies/{study_id}{path}", body).status_code == 403, path
    assert api.post(f"/studies/{study_id}/trials/{n + 100}/heartbeat").status_code == 404
    worker_study = api.create(SPEC)
    refused = api.post(f"/studies/{worker_study}/trials/ask")
    assert refused.status_code == 409
    assert refused.json()["error"]["details"]["reason"] == "not_external"


def test_ask_with_count_answers_a_list(http: httpx.Client, url: str, team: Team) -> None:
    api = member(http, url, team)
    study_id = api.create(external(budget={"n_trials": 3, "max_parallel": 5}))
    response = api.post(f"/studies/{study_id}/trials/ask", params={"count": 5})
    assert response.status_code == 201, response.text
    items = response.json()["items"]
    assert [t["number"] for t in items] == [0, 1, 2]
    assert len({t["params"]["lr"] for t in items}) == 3


def test_external_specs_refuse_trainer_options(http: httpx.Client, url: str, team: Team) -> None:
    api = member(http, url, team)
    with_builtin = external(objective={**EXTERNAL["objective"], "builtin": "classifier",
                                       "dataset": "digits"})
    found = problems(api.post("/studies", with_builtin))
    assert {"objective.builtin", "objective.dataset"} <= set(found)
    found = problems(api.post("/studies", external(
        early_stopping={"monitor": "val_loss", "mode": "min", "patience": 2})))
    assert "early_stopping" in found
    multi = external(objective={"external": True, "metrics": ["val_accuracy", "latency_ms"],
                                "directions": ["maximize", "minimize"]},
                     sampler={"type": "nsga2"}, pruner=None)
    created = api.post("/studies", multi)
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["objective"]["metric"] == ["val_accuracy", "latency_ms"]


def test_four_clients_at_once_need_one_pooled_connection(
    http: httpx.Client, db_url: str, team: Team, tmp_path: Path
) -> None:
    """Ask, report and tell each take one pooled connection at a time (the pruner and the
    sampler read through the storage once the route's own transaction has ended): with the pool
    capped at one connection, four clients at once still run the study to its end, where a
    route holding a connection while it waits for a second would wait out the pool's
    timeout and answer 503."""
    if is_sqlite(db_url):
        pytest.skip("the pool cap is PostgreSQL's")
    one_connection = {"TUNEBOARD_DB_POOL_SIZE": "1", "TUNEBOARD_DB_MAX_OVERFLOW": "0"}
    with serve_process(db_url, BROKER_URL, tmp_path, one_connection) as base:
        study_id = member(http, base + API, team).create(
            external(budget={"n_trials": 12, "max_parallel": 4}))

        def client(_: int) -> list[str]:
            states = []
            with httpx.Client(timeout=60) as own:
                api = member(own, base + API, team)
                while (asked := api.post(f"/studies/{study_id}/trials/ask")).status_code == 201:
                    number = asked.json()["number"]
                    state = "complete"
                    for step in range(3):
                        if api.report(study_id, number, step, val_accuracy=0.1 * number)[
                                "should_prune"]:
                            state = "pruned"
                            break
                    body: dict[str, Any] = {"state": state}
                    if state == "complete":
                        body["metrics"] = {"val_accuracy": 0.1 * number}
                    told = api.tell(study_id, number, **body)
                    assert told.status_code == 200, told.text
                    states.append(told.json()["state"])
                assert asked.status_code == 409, asked.text
            return states

        with ThreadPoolExecutor(4) as pool:
            states = [s for each in pool.map(client, range(4)) for s in each]
        study = member(http, base + API, team).get(f"/studies/{study_id}").json()
    assert len(states) == 12 and set(states) <= {"complete", "pruned"}
    assert study["state"] == "completed"
    assert study["counts"]["complete"] + study["counts"]["pruned"] == 12


def test_an_ask_of_a_new_trial_is_six_statements_and_leaves_it_leased(
    http: httpx.Client, url: str, db_url: str, team: Team
) -> None:
    """On PostgreSQL an ask of a new trial sends six statements: the key's read (in autocommit,
    no transaction around it), the claim's lock of the study, its count of active trials, the
    trial's insert (RUNNING and leased, not inserted WAITING and then claimed) and one update of
    the study (its counters and queued -> running) in the same flush, and the parameters'
    update (in autocommit: the claim knows the trial, so nothing is read back). What it leaves
    is a claimed trial."""
    if is_sqlite(db_url):
        pytest.skip("counts PostgreSQL's statements (SQLite adds its BEGIN statements)")
    api = member(http, url, team)
    study_id = api.create(external())
    api.ask(study_id)  # the first ask of a study learns its parameters' distributions
    sent: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement.split(None, 1)[0])

    engine = get_engine(db_url)
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        asked = api.ask(study_id)
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
    assert sent == ["SELECT", "SELECT", "SELECT", "INSERT", "UPDATE", "UPDATE"], sent

    trial = api.get(f"/studies/{study_id}/trials/{asked['number']}").json()
    assert trial["state"] == "running" and trial["worker"] == "client"
    assert {**trial["params"], **EXTERNAL["fixed"]} == asked["params"]
    study = api.get(f"/studies/{study_id}").json()
    assert study["state"] == "running" and study["started_at"] is not None
    assert study["counts"]["running"] == 2
    with session_scope(db_url) as session:
        row = session.execute(
            sa.select(Trial.lease_expires_at, Trial.datetime_start, Study.next_trial_number,
                      Study.sampler_trials)
            .join(Study, Study.id == Trial.study_id)
            .where(Trial.study_id == study_id, Trial.number == asked["number"])
        ).one()
    assert row[0] is not None and row[1] is not None
    assert (row[0] - row[1]).total_seconds() == pytest.approx(LEASE_S)
    assert row[2] == 2 and row[3] == 2  # two numbers handed out, two of the budget taken
