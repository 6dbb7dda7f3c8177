"""Trials through real Celery worker processes: SQLite with the embedded broker, PostgreSQL with
Redis. Two workers (``w1``, ``w2``) and a reaper serve every test of this module (the test that
kills a worker, in test_worker_loss.py, starts its own)."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable

import pytest

import tuneboard.queue as queue_module
from tests.workers.conftest import Stack, Studies, steps_spec, wait_until
from tuneboard import leaderboard
from tuneboard.db import session_scope, utcnow
from tuneboard.queue import send_run_trial
from tuneboard.studies import repository as repo


@pytest.fixture
def stack(shared_stack: Stack, client_env: Callable[[Stack], None]) -> Stack:
    client_env(shared_stack)
    return shared_stack


def test_a_study_of_the_builtin_trainer_runs_to_completion(stack: Stack, studies: Studies) -> None:
    sid = studies.create({
        "name": "iris-mlp",
        "objective": {"builtin": "classifier", "dataset": "iris", "model": "mlp",
                      "metric": "val_accuracy", "direction": "maximize", "max_epochs": 3},
        "search_space": {"lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True}},
        "fixed": {"hidden": 16},
        "sampler": {"type": "tpe", "seed": 1},
        "budget": {"n_trials": 4, "max_parallel": 2},
    })
    assert studies.wait_finished(sid, stack, timeout=120).state == "completed"
    trials = studies.trials(sid)
    assert [t.state for t in trials] == ["complete"] * 4
    for t in trials:
        assert t.epochs_run == 3 and t.device == "cpu" and t.worker is not None
        metrics = studies.metrics(t.id)
        assert sorted(metrics) == [1, 2, 3]
        assert {"train_loss", "val_loss", "val_accuracy", "generalization_gap"} <= set(metrics[3])
    with session_scope(stack.db_url) as session:
        study = repo.get_study(session, None, sid)
        assert study is not None
        ranked = leaderboard.study_leaderboard(session, study, limit=10)
        values = [r.trial.value for r in ranked]
    assert len(values) == 4 and values == sorted(values, reverse=True)  # type: ignore[type-var]


def test_two_workers_keep_to_max_parallel_and_n_trials(stack: Stack, studies: Studies) -> None:
    sid = studies.create(steps_spec(n_trials=6, max_parallel=1, steps=2, sleep_s=0.15))
    assert studies.wait_finished(sid, stack).state == "completed"
    trials = studies.trials(sid)
    assert [(t.origin, t.state) for t in trials] == [("sampler", "complete")] * 6
    spans = sorted((t.datetime_start, t.datetime_complete) for t in trials)
    for (_, previous_end), (start, _) in itertools.pairwise(spans):
        assert previous_end is not None and start is not None and start >= previous_end


def test_the_same_task_delivered_twice_runs_one_trial(stack: Stack, studies: Studies) -> None:
    sid = studies.create(steps_spec(n_trials=1, steps=4, sleep_s=0.25))
    (trial,) = studies.trials(sid)
    send_run_trial(trial.id, "default")
    send_run_trial(trial.id, "default")
    assert studies.wait_finished(sid, stack).state == "completed"
    (trial,) = studies.trials(sid)
    assert trial.state == "complete" and trial.epochs_run == 4
    assert sorted(studies.metrics(trial.id)) == [1, 2, 3, 4]
    refused = re.compile(rf"trial id {trial.id} (is \w+: a duplicate|was claimed by another)")
    wait_until(lambda: len(refused.findall(stack.logs())) >= 2, timeout=10,
               message="both extra deliveries to be refused")


def test_cancel_stops_running_trials_within_a_step_and_starts_nothing(
    stack: Stack, studies: Studies
) -> None:
    sid = studies.create(steps_spec(n_trials=6, max_parallel=2, steps=30, sleep_s=1.2))
    wait_until(
        lambda: [t.epochs_run >= 1 for t in studies.trials(sid) if t.state == "running"]
        == [True, True],
        timeout=60, message="two trials running",
    )
    studies.cancel(sid)
    cancelled_at = utcnow()
    at_cancel = {t.number: t.epochs_run for t in studies.trials(sid)}
    wait_until(lambda: not any(t.state == "running" for t in studies.trials(sid)),
               timeout=15, message="the running trials to stop")
    stopped_after = (utcnow() - cancelled_at).total_seconds()
    trials = studies.trials(sid)
    assert studies.study(sid).state == "cancelled"
    ran = [t for t in trials if t.datetime_start is not None]
    assert len(ran) == 2 and all(t.datetime_start < cancelled_at for t in ran)  # type: ignore[operator]
    for t in ran:
        assert t.state == "fail" and t.error == "study cancelled"
        assert t.epochs_run <= at_cancel[t.number] + 1
    assert stopped_after < 6
    time.sleep(1.5)
    assert all(t.datetime_start is None for t in studies.trials(sid) if t.number not in at_cancel
               or at_cancel[t.number] == 0)


def test_messages_the_broker_lost_are_resent_by_the_reaper(
    stack: Stack, studies: Studies, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(queue_module, "send_run_trial", lambda *args, **kwargs: None)
        sid = studies.create(steps_spec(n_trials=3, max_parallel=2))
    assert [t.state for t in studies.trials(sid)] == ["waiting", "waiting"]
    assert studies.wait_finished(sid, stack, timeout=60).state == "completed"
    assert [t.state for t in studies.trials(sid)] == ["complete"] * 3


def test_a_trial_that_kills_its_process_stops_after_max_retries(
    stack: Stack, studies: Studies
) -> None:
    """``task_reject_on_worker_lost`` requeues the message of a dead process with no count of
    its own; the claim refuses the redelivery and the database counts the attempts."""
    sid = studies.create(steps_spec(n_trials=1, exit_at=1, max_retries=1))
    assert studies.wait_finished(sid, stack, timeout=60).state == "completed"
    time.sleep(2)
    trials = studies.trials(sid)
    assert [(t.state, t.attempt, t.origin) for t in trials] == [
        ("fail", 1, "sampler"), ("fail", 2, "retry"),
    ]
    assert all((t.error or "").startswith("worker lost: no heartbeat for") for t in trials)
