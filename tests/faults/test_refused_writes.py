"""A worker's write refused by the database (a constraint violation) is logged, and recorded as
the trial's error, by its kind and message only: never the statement's parameters, nor
PostgreSQL's DETAIL, which quotes the failing row's values. On the test's own PostgreSQL
cluster and Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.faults.conftest import RedisServer
from tests.faults.invariants import check_invariants
from tests.faults.stacks import FaultStack, fault_stack, member_studies
from tests.workers.conftest import Stack, steps_spec

CONSTRAINT = "tb_test_small_metrics"
# x = 1002 makes the first report's loss (x - 2)**2 + 1 = 1000001 and the trial's seed is
# 7 * 1_000_003 + 0 = 7000021: both are values of rows the constraint refuses.
ROW_VALUES = ("1000001", "7000021")


@pytest.fixture
def stack(
    pg_db: str, redis_server: RedisServer, tmp_path: Path, client_env: Callable[[Stack], None]
) -> Iterator[FaultStack]:
    """Metric rows of 1e6 or more violate a CHECK constraint of this database."""
    engine = sa.create_engine(pg_db, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE trial_metrics ADD CONSTRAINT {CONSTRAINT} "
                             "CHECK (value < 1000000)")
    engine.dispose()
    stack = fault_stack(pg_db, redis_server.url, tmp_path / "home", client_env)
    try:
        yield stack
    finally:
        stack.stop_all()


def test_a_refused_write_logs_no_row_values(stack: FaultStack) -> None:
    worker = stack.start_worker("w")
    stack.wait_ready(worker)
    studies = member_studies(stack.db_url)
    spec = steps_spec(n_trials=1, max_retries=0, steps=2, x=1002.0)
    spec["search_space"] = {"y": {"type": "float", "low": 0.0, "high": 1.0}}
    sid = studies.create(spec)
    study = studies.wait_finished(sid, stack, timeout=60)
    (trial,) = studies.trials(sid)
    assert trial.state == "fail", (study.state, trial.error, stack.logs())
    error = trial.error or ""
    log = worker.log.read_text(errors="replace")
    # The failure is there, by its kind and the server's primary message...
    assert "storing the trial's reports failed: IntegrityError [23514]" in error, error
    assert f'violates check constraint "{CONSTRAINT}"' in error, error
    assert "storing reports of trial id" in log and "IntegrityError [23514]" in log, log
    # ... and nothing of the rows: no DETAIL, no parameters, no values.
    for text in (error, log):
        assert "Failing row contains" not in text and "[parameters:" not in text, text
        for value in ROW_VALUES:
            assert value not in text, f"{value} in:\n{text}"
    check_invariants(stack.db_url, [sid])
