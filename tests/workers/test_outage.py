"""A worker's database errors are logged (and recorded as a trial's error) by their kind and
message only: never the statement's parameters, nor PostgreSQL's DETAIL, which quotes the
failing row's values."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from tests.workers.conftest import Stack, Studies, steps_spec
from tuneboard.db.engine import is_sqlite

CONSTRAINT = "tb_test_small_metrics"
# x = 1002 makes the first report's loss (x - 2)**2 + 1 = 1000001 and the trial's seed is
# 7 * 1_000_003 + 0 = 7000021: both are values of rows the constraint refuses.
ROW_VALUES = ("1000001", "7000021")


@pytest.fixture
def refused_metrics(db_url: str) -> Iterator[None]:
    """Metric rows of 1e6 or more violate a CHECK constraint, for this test only."""
    if is_sqlite(db_url):
        pytest.skip("PostgreSQL's errors are the ones whose DETAIL quotes row values")
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"ALTER TABLE trial_metrics ADD CONSTRAINT {CONSTRAINT} "
                             "CHECK (value < 1000000) NOT VALID")
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"ALTER TABLE trial_metrics DROP CONSTRAINT {CONSTRAINT}")
        engine.dispose()


def test_a_refused_write_logs_no_row_values(
    refused_metrics: None, own_stack: Stack, client_env: Callable[[Stack], None], studies: Studies
) -> None:
    stack = own_stack
    client_env(stack)
    worker = stack.start_worker("w")
    stack.wait_ready(worker)
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
