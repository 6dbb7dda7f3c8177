"""Revision 0008 widens the check on ``trials.origin`` for ``warm_start`` with rows present:
no trial or metric is lost, and trial ids keep counting up past deleted ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.db_support import BACKENDS, create_database, drop_database
from tuneboard.db.engine import get_engine
from tuneboard.db.migrate import upgrade

NOW = "2026-12-01 10:00:00"


def _trial(conn: sa.Connection, study_id: int, number: int, origin: str) -> int:
    return int(conn.execute(sa.text(
        "INSERT INTO trials (study_id, number, state, params, distributions, "
        "intermediate_values, user_attrs, system_attrs, origin, attempt, epochs_run) "
        "VALUES (:s, :n, 'complete', '{}', '{}', '{}', '{}', '{}', :o, 1, 0) RETURNING id"
    ), {"s": study_id, "n": number, "o": origin}).scalar_one())


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_origin_check_changes_without_losing_rows_or_reusing_ids(
    backend: str, tmp_path: Path
) -> None:
    url = create_database(backend, tmp_path, migrate=False)
    try:
        upgrade(url, "0007")
        engine = get_engine(url)
        with engine.begin() as conn:
            team = conn.execute(sa.text(
                "INSERT INTO teams (name, created_at) VALUES ('t', :now) RETURNING id"),
                {"now": NOW}).scalar_one()
            study = conn.execute(sa.text(
                "INSERT INTO studies (team_id, name, optuna_name, directions, state, "
                "user_attrs, system_attrs, created_at, created_by, sampler_trials, "
                "next_trial_number) VALUES (:t, 's', 'o', '[\"maximize\"]', 'running', '{}', "
                "'{}', :now, 'me', 0, 3) RETURNING id"), {"t": team, "now": NOW}).scalar_one()
            kept = [_trial(conn, study, n, "sampler") for n in range(2)]
            gone = _trial(conn, study, 2, "manual")
            conn.execute(sa.text(
                "INSERT INTO trial_metrics (trial_id, step, name, value) "
                "VALUES (:t, 1, 'loss', 0.5)"), {"t": kept[0]})
            conn.execute(sa.text("DELETE FROM trials WHERE id = :i"), {"i": gone})
            with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
                _trial(conn, study, 3, "warm_start")
        engine.dispose()

        upgrade(url)
        engine = get_engine(url)
        with engine.begin() as conn:
            ids = conn.execute(sa.text("SELECT id FROM trials ORDER BY id")).scalars().all()
            assert ids == kept
            metrics = conn.execute(sa.text("SELECT count(*) FROM trial_metrics")).scalar_one()
            assert metrics == 1
            new = _trial(conn, study, 3, "warm_start")
            assert new > gone  # the deleted trial's id is not handed out again
            with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
                _trial(conn, study, 4, "nonsense")
    finally:
        drop_database(url)
