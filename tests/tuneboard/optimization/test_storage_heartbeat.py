"""Heartbeats: SqlStorage as Optuna's BaseHeartbeat. Optuna ships no reusable heartbeat suite,
so these follow its own tests, with heartbeats backdated in the database instead of sleeps."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from unittest.mock import Mock

import optuna
import pytest
import sqlalchemy as sa
from optuna.storages import RetryHeartbeatStaleTrialCallback, fail_stale_trials
from optuna.trial import TrialState

from tuneboard.db.base import utcnow
from tuneboard.db.engine import get_engine
from tuneboard.db.models import Trial
from tuneboard.optimization.storage import SqlStorage

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def backdate_heartbeat(url: str, trial_id: int, seconds: float) -> None:
    with get_engine(url).begin() as conn:
        conn.execute(
            sa.update(Trial)
            .where(Trial.id == trial_id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
        )


def ask(study: optuna.Study) -> optuna.Trial:
    with pytest.warns(UserWarning, match="Heartbeat"):  # heartbeats are meant for optimize()
        return study.ask()


@pytest.mark.parametrize("kwargs", [{"heartbeat_interval": 0}, {"grace_period": -1}])
def test_invalid_interval_or_grace_period(db_url: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SqlStorage(db_url, **kwargs)


def test_record_heartbeat_writes_heartbeat_at_in_utc(db_url: str) -> None:
    storage = SqlStorage(db_url, heartbeat_interval=1)
    trial = ask(optuna.create_study(storage=storage))
    storage.record_heartbeat(trial._trial_id)

    with get_engine(db_url).connect() as conn:
        beat = conn.scalar(sa.select(Trial.heartbeat_at).where(Trial.id == trial._trial_id))
    assert beat is not None and abs(beat - utcnow()) < timedelta(seconds=30)


@pytest.mark.parametrize("grace_period", [None, 5])
def test_stale_trials_are_running_ones_of_the_study_past_the_grace_period(
    db_url: str, grace_period: int | None
) -> None:
    storage = SqlStorage(db_url, heartbeat_interval=2, grace_period=grace_period)
    study, other = optuna.create_study(storage=storage), optuna.create_study(storage=storage)
    stale, fresh, silent, finished = (ask(study) for _ in range(4))
    elsewhere = ask(other)
    for trial in (stale, finished, elsewhere):
        backdate_heartbeat(db_url, trial._trial_id, 6)  # past 2 * interval and past 5
    backdate_heartbeat(db_url, fresh._trial_id, 3)
    study.tell(finished, 1.0)

    assert storage._get_stale_trial_ids(study._study_id) == [stale._trial_id]
    assert silent._trial_id not in storage._get_stale_trial_ids(study._study_id)


def test_fail_stale_trials_fails_them_and_calls_the_callback(db_url: str) -> None:
    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        assert study.user_attrs["test"] == "A"
        assert trial.user_attrs["test"] == "B"
        assert trial.state == TrialState.FAIL

    failed_trial_callback = Mock(wraps=callback)
    storage = SqlStorage(
        db_url, heartbeat_interval=1, grace_period=2, failed_trial_callback=failed_trial_callback
    )
    study = optuna.create_study(storage=storage)
    study.set_user_attr("test", "A")
    stale, alive = ask(study), ask(study)
    stale.set_user_attr("test", "B")
    backdate_heartbeat(db_url, stale._trial_id, 10)
    storage.record_heartbeat(alive._trial_id)

    fail_stale_trials(study)
    fail_stale_trials(study)  # a second reaper finds nothing left to fail

    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.RUNNING]
    failed_trial_callback.assert_called_once()


def test_a_stale_trial_is_retried_and_the_retry_is_claimed_by_optimize(db_url: str) -> None:
    storage = SqlStorage(
        db_url,
        heartbeat_interval=1,
        grace_period=2,
        failed_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1),
    )
    study = optuna.create_study(storage=storage)
    lost = ask(study)
    lost.suggest_float("x", 0.0, 1.0)
    lost.report(0.5, 1)
    backdate_heartbeat(db_url, lost._trial_id, 10)

    # optimize() fails stale trials first, then runs the WAITING retry the callback queued.
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=1)

    first, retry = study.trials
    assert first.state == TrialState.FAIL and retry.state == TrialState.COMPLETE
    assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == 0
    assert retry.params == first.params and retry.intermediate_values == {}
    with get_engine(db_url).connect() as conn:
        assert conn.scalar(sa.select(Trial.heartbeat_at).where(Trial.id == retry._trial_id))
