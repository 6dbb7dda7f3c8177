"""PostgreSQL stopped under a running trial (the cluster is the test's own): an outage shorter
than ``TUNEBOARD_DB_OUTAGE_S`` costs the trial nothing, not even with ``max_retries: 0``; a
longer one fails it with the database's error as the reason, recorded once the database is
back, and not overwritten by the reaper's "worker lost"."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import PostgresCluster, RedisServer
from tests.faults.invariants import check_invariants
from tests.faults.stacks import FaultStack, fault_stack, member_studies
from tests.workers.conftest import Stack, Studies, steps_spec, wait_until

pytestmark = pytest.mark.slow

STEPS = 30
STEP_S = 0.5


@pytest.fixture
def outage_stack(
    request: pytest.FixtureRequest,
    pg_db: str,
    redis_server: RedisServer,
    tmp_path: Path,
    client_env: Callable[[Stack], None],
) -> Iterator[FaultStack]:
    """A worker and a reaper on the test's own database and broker; ``TUNEBOARD_DB_OUTAGE_S``
    from the test's ``outage_s`` parameter."""
    stack = fault_stack(pg_db, redis_server.url, tmp_path / "home", client_env,
                        db_outage_s=str(request.param))
    try:
        stack.wait_ready(stack.start_worker("outage"), stack.start_reaper())
        yield stack
    finally:
        stack.stop_all()


def _run_through_an_outage(
    cluster: PostgresCluster, stack: FaultStack, outage_s: float
) -> tuple[Studies, int]:
    studies = member_studies(stack.db_url)
    sid = studies.create(steps_spec(n_trials=1, max_retries=0, steps=STEPS, sleep_s=STEP_S))
    wait_until(lambda: any(t.state == "running" and t.epochs_run >= 3
                           for t in studies.trials(sid)),
               timeout=60, message="the trial to run three steps")
    cluster.stop()
    time.sleep(outage_s)
    cluster.start()
    return studies, sid


@pytest.mark.parametrize("outage_stack", [60], indirect=True)
def test_a_ten_second_outage_costs_the_trial_nothing(
    pg_cluster: PostgresCluster, outage_stack: FaultStack
) -> None:
    studies, sid = _run_through_an_outage(pg_cluster, outage_stack, 10)
    study = studies.wait_finished(sid, outage_stack, timeout=90)
    (trial,) = studies.trials(sid)
    assert (study.state, trial.state, trial.error) == ("completed", "complete", None), (
        outage_stack.logs())
    assert trial.attempt == 1 and trial.epochs_run == STEPS
    # Every step stored once (the metrics' key is (trial, step, name)), with every metric.
    metrics = studies.metrics(trial.id)
    assert sorted(metrics) == list(range(1, STEPS + 1))
    assert all(set(m) == {"loss", "resumed_at", "seed"} for m in metrics.values())
    check_invariants(outage_stack.db_url, [sid], {trial.id: range(1, STEPS + 1)})


@pytest.mark.parametrize("outage_stack", [3], indirect=True)
def test_a_longer_outage_fails_the_trial_with_the_database_error(
    pg_cluster: PostgresCluster, outage_stack: FaultStack
) -> None:
    studies, sid = _run_through_an_outage(pg_cluster, outage_stack, 8)
    study = studies.wait_finished(sid, outage_stack, timeout=90)
    (trial,) = studies.trials(sid)
    error = trial.error or ""
    assert trial.state == "fail", outage_stack.logs()
    assert "the database was unreachable for more than 3s" in error, error
    assert "OperationalError" in error and "worker lost" not in error, error
    # Stored before the outage (the writer had committed them), so acknowledged.
    stored = sorted(studies.metrics(trial.id))
    assert stored and stored == list(range(1, len(stored) + 1))
    assert study.state.is_finished() and trial.attempt == 1
    check_invariants(outage_stack.db_url, [sid], {trial.id: stored})
