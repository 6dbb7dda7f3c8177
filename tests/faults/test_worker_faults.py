"""Workers killed under running trials, on the test's own PostgreSQL cluster and Redis: a
SIGKILLed pool process and a SIGKILLed worker (main process and pool) cost a retry, never a
trial; a poison trial, whose objective kills its own process, stops after ``max_retries``
instead of killing workers forever. After each, the five invariants hold."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import RedisServer
from tests.faults.invariants import check_invariants
from tests.faults.stacks import FaultStack, fault_stack, member_studies
from tests.workers.conftest import Stack, Studies, steps_spec, wait_until
from tuneboard.db.models import Trial

STEPS = 8
STEP_S = 0.25


@pytest.fixture
def stack(
    pg_db: str, redis_server: RedisServer, tmp_path: Path, client_env: Callable[[Stack], None]
) -> Iterator[FaultStack]:
    stack = fault_stack(pg_db, redis_server.url, tmp_path / "home", client_env)
    try:
        yield stack
    finally:
        stack.stop_all()


def _running(trials: list[Trial], steps: int = 2) -> Trial | None:
    return next((t for t in trials if t.state == "running" and t.epochs_run >= steps), None)


def _completes_with_one_retry(
    stack: FaultStack, studies: Studies, sid: int, killed: Trial
) -> Trial:
    study = studies.wait_finished(sid, stack, timeout=90)
    trials = studies.trials(sid)
    assert study.state == "completed", stack.logs()
    lost, retry = trials
    assert lost.id == killed.id and lost.state == "fail"
    assert (lost.error or "").startswith("worker lost: no heartbeat"), lost.error
    assert (retry.state, retry.origin, retry.attempt, retry.retry_of) == (
        "complete", "retry", 2, lost.number)
    check_invariants(stack.db_url, [sid], {retry.id: range(1, STEPS + 1)})
    return retry


def test_a_killed_pool_process_costs_a_retry(stack: FaultStack) -> None:
    stack.wait_ready(stack.start_worker("pool"), stack.start_reaper())
    studies = member_studies(stack.db_url)
    sid = studies.create(steps_spec(n_trials=1, max_retries=1, steps=STEPS, sleep_s=STEP_S))
    running = wait_until(lambda: _running(studies.trials(sid)), timeout=60,
                         message="the trial to run two steps")
    # ``worker`` is "<hostname>:<pid of the pool process running the trial>".
    os.kill(int((running.worker or "").rsplit(":", 1)[1]), signal.SIGKILL)
    _completes_with_one_retry(stack, studies, sid, running)


def test_a_killed_worker_costs_a_retry_on_the_other(stack: FaultStack) -> None:
    workers = {name: stack.start_worker(name) for name in ("ka", "kb")}
    stack.wait_ready(*workers.values(), stack.start_reaper())
    studies = member_studies(stack.db_url)
    sid = studies.create(steps_spec(n_trials=1, max_retries=1, steps=STEPS, sleep_s=STEP_S))
    running = wait_until(lambda: _running(studies.trials(sid)), timeout=60,
                         message="the trial to run two steps")
    victim = (running.worker or "").split("@")[0]
    workers[victim].kill(signal.SIGKILL)
    retry = _completes_with_one_retry(stack, studies, sid, running)
    assert not (retry.worker or "").startswith(victim)


def test_a_poison_trial_stops_after_max_retries(stack: FaultStack) -> None:
    stack.wait_ready(stack.start_worker("poison"), stack.start_reaper())
    studies = member_studies(stack.db_url)
    sid = studies.create(steps_spec(n_trials=1, max_retries=2, steps=STEPS, sleep_s=0.05,
                                    exit_at=2))
    study = studies.wait_finished(sid, stack, timeout=120)
    trials = studies.trials(sid)
    # The attempt and its two retries, each lost with its process; then nothing more.
    assert [(t.attempt, t.state) for t in trials] == [(1, "fail"), (2, "fail"), (3, "fail")], (
        stack.logs())
    assert all((t.error or "").startswith("worker lost") for t in trials)
    assert study.state.is_finished()
    check_invariants(stack.db_url, [sid])
