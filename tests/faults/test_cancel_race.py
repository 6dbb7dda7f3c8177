"""Cancel racing the workers on PostgreSQL: studies cancelled over HTTP while several workers
claim, run, tell and dispatch their trials. Every writer locks a study's row before its
trials' rows, so a cancel never deadlocks with a worker (no 503); a study says ``cancelled``
only once none of its trials is waiting or running, ``cancelling`` until then; and the five
invariants hold."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from api.main import create_app
from tests.api.conftest import API, make_team
from tests.faults.conftest import RedisServer
from tests.faults.invariants import check_invariants
from tests.faults.stacks import FaultStack, fault_stack, member_studies
from tests.workers.conftest import Stack, steps_spec
from tuneboard.config import Settings

ROUNDS = 4
# How long after its creation each round's study is cancelled: at once (its first trials
# being claimed), then while trials run, end and are dispatched.
CANCEL_AFTER_S = [0.0, 0.3, 0.8, 1.5]
# A cancelled study's running trials stop within a stop poll (1 s) and a step.
SETTLED_WITHIN_S = 10.0


@pytest.fixture
def stack(
    pg_db: str, redis_server: RedisServer, tmp_path: Path, client_env: Callable[[Stack], None]
) -> Iterator[FaultStack]:
    stack = fault_stack(pg_db, redis_server.url, tmp_path / "home", client_env)
    try:
        procs = [stack.start_worker(f"c{i}", concurrency=2) for i in range(3)]
        stack.wait_ready(*procs, stack.start_reaper())
        yield stack
    finally:
        stack.stop_all()


def test_cancel_never_deadlocks_and_waits_for_running_trials(
    stack: FaultStack, serve: Callable[[FastAPI], str]
) -> None:
    settings = Settings(database_url=stack.db_url, broker_url=stack.broker_url,
                        home=stack.home, environment="test")
    url = serve(create_app(settings))
    headers = make_team(stack.db_url, "racing").headers("member")
    studies = member_studies(stack.db_url)
    created: list[int] = []
    seen: set[str] = set()
    with httpx.Client(base_url=f"{url}{API}", headers=headers, timeout=30) as http:
        for round_, delay in enumerate(CANCEL_AFTER_S[:ROUNDS]):
            spec = steps_spec(f"race-{round_}", n_trials=12, max_parallel=6, max_retries=0,
                              steps=6, sleep_s=0.2)
            response = http.post("/studies", json=spec)
            assert response.status_code == 201, response.text
            sid = response.json()["id"]
            created.append(sid)
            time.sleep(delay)
            cancel = http.post(f"/studies/{sid}/cancel")
            assert cancel.status_code == 202, cancel.text
            assert cancel.json()["state"] in ("cancelling", "cancelled")
            seen.add(cancel.json()["state"])
            deadline = time.monotonic() + SETTLED_WITHIN_S
            while True:
                state = http.get(f"/studies/{sid}").json()["state"]
                # Read after the state: a cancelled study's trials can only have ended since.
                active = [(t.number, t.state) for t in studies.trials(sid)
                          if t.state in ("waiting", "running")]
                if state == "cancelled":
                    assert not active, f"study {sid} cancelled with {active}"
                    break
                assert state == "cancelling", state
                assert time.monotonic() < deadline, (
                    f"study {sid} still cancelling: {active}\n{stack.logs()}")
                time.sleep(0.1)
            trials = studies.trials(sid)
            assert all(t.state in ("complete", "fail", "pruned") for t in trials)
            assert all(t.error in (None, "study cancelled",
                                   "study cancelled before this trial started")
                       for t in trials), [t.error for t in trials]
    assert "cancelling" in seen  # some round caught trials running
    check_invariants(stack.db_url, created)
    logs = [p.log.read_text(errors="replace") for p in stack.processes]
    assert not any("deadlock detected" in text for text in logs)
