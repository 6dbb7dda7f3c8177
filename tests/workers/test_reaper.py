"""The reaper in this process, on the states a crashed worker or a lossy broker leave behind."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import optuna
import pytest
from sqlalchemy import update

from tests.workers.conftest import Stack, Studies, steps_spec
from tests.workers.test_runner import purge, queue_size, run, run_waiting
from tuneboard.config import get_settings
from tuneboard.db import session_scope, utcnow
from tuneboard.db.models import Trial
from tuneboard.optimization.storage import SqlStorage
from tuneboard.spec import StudyState, TrialState
from tuneboard.studies import repository as repo
from workers import reaper


def lose_a_trial(studies: Studies, study_id: int, *, steps_done: int, silent_s: float) -> Trial:
    """What a worker killed after ``steps_done`` steps leaves: a RUNNING trial with sampled
    parameters, stored steps, a checkpoint, and a heartbeat ``silent_s`` old."""
    url = studies.db_url
    settings = get_settings()
    trial = next(t for t in studies.trials(study_id) if t.state == TrialState.WAITING)
    checkpoint_dir = settings.checkpoint_root / str(study_id) / str(trial.number)
    with session_scope(url) as session:
        assert repo.claim_trial(session, trial.id, worker="ghost@host:1", device="cpu",
                                now=utcnow())
        repo.set_checkpoint_path(session, trial.id, str(checkpoint_dir))
    study = optuna.load_study(study_name=studies.study(study_id).optuna_name,
                              storage=SqlStorage(url), sampler=optuna.samplers.RandomSampler(0))
    ask = optuna.trial.Trial(study, trial.id)
    x = ask.suggest_float("x", -5.0, 5.0)
    for step in range(1, steps_done + 1):
        loss = (x - 2.0) ** 2 + 1.0 / step
        with session_scope(url) as session:
            repo.record_reports(
                session, trial.id,
                {step: {"loss": loss, "resumed_at": 1.0, "seed": float(trial.seed or 0)}},
                utcnow(),
            )
        ask.report(loss, step)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    (checkpoint_dir / "latest.pt").write_text(json.dumps({"step": steps_done}))
    with session_scope(url) as session:
        session.execute(update(Trial).where(Trial.id == trial.id)
                        .values(heartbeat_at=utcnow() - timedelta(seconds=silent_s)))
    return repo_trial(url, trial.id)


def repo_trial(url: str, trial_id: int) -> Trial:
    with session_scope(url) as session:
        trial = repo.get_trial_by_id(session, trial_id)
        assert trial is not None
        session.expunge(trial)
        return trial


def test_a_lost_trial_fails_and_its_retry_resumes_from_the_checkpoint(
    local: Stack, studies: Studies
) -> None:
    sid = studies.create(steps_spec(n_trials=1, steps=5))
    purge()
    lost = lose_a_trial(studies, sid, steps_done=2, silent_s=60)

    report = reaper.reap_once(get_settings())
    assert (report.failed, report.retried) == (1, 1)
    lost_after, retry = studies.trials(sid)
    assert lost_after.state == TrialState.FAIL
    assert lost_after.error == "worker lost: no heartbeat for 60s (worker ghost@host:1)"
    assert retry.state == TrialState.WAITING and retry.origin == "retry"
    assert (retry.attempt, retry.retry_of, retry.seed) == (2, lost.number, lost.seed)
    assert retry.checkpoint_path == lost.checkpoint_path
    assert retry.system_attrs["fixed_params"] == lost_after.params
    assert queue_size() == 1

    assert run_waiting(studies, sid) == [TrialState.COMPLETE], studies.trials(sid)[1].error
    retry = studies.trials(sid)[1]
    assert retry.params == lost_after.params and retry.epochs_run == 5
    metrics = studies.metrics(retry.id)
    assert sorted(metrics) == [1, 2, 3, 4, 5]
    assert [metrics[s]["resumed_at"] for s in range(1, 6)] == [1.0, 1.0, 3.0, 3.0, 3.0]
    frozen = SqlStorage(local.db_url).get_trial(retry.id)
    assert sorted(frozen.intermediate_values) == [1, 2, 3, 4, 5]
    assert studies.study(sid).state == StudyState.COMPLETED


def test_retries_stop_at_max_retries(local: Stack, studies: Studies) -> None:
    sid = studies.create(steps_spec(n_trials=1, max_retries=1))
    lose_a_trial(studies, sid, steps_done=1, silent_s=30)
    assert reaper.reap_once(get_settings()).retried == 1
    lose_a_trial(studies, sid, steps_done=1, silent_s=30)
    report = reaper.reap_once(get_settings())
    assert (report.failed, report.retried) == (1, 0)
    trials = studies.trials(sid)
    assert [(t.state, t.attempt) for t in trials] == [(TrialState.FAIL, 1), (TrialState.FAIL, 2)]
    assert not any(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in trials)
    assert studies.study(sid).state == StudyState.COMPLETED


def test_racing_reapers_fail_and_retry_once(local: Stack, studies: Studies) -> None:
    sid = studies.create(steps_spec(n_trials=1))
    lose_a_trial(studies, sid, steps_done=1, silent_s=30)
    reports: list[reaper.ReapReport] = []
    threads = [
        threading.Thread(target=lambda: reports.append(reaper.reap_once(get_settings())))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.failed for r in reports) == 1 and sum(r.retried for r in reports) == 1
    assert [t.origin for t in studies.trials(sid)] == ["sampler", "retry"]


def test_the_heartbeat_keeps_a_quiet_trial_alive(
    local: Stack, studies: Studies, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNEBOARD_HEARTBEAT_INTERVAL_S", "0.2")
    monkeypatch.setenv("TUNEBOARD_GRACE_PERIOD_S", "1")
    get_settings.cache_clear()
    sid = studies.create(steps_spec(n_trials=1, steps=2, sleep_s=1.5))
    trial = studies.trials(sid)[0]
    outcome: list[str | None] = []
    thread = threading.Thread(
        target=lambda: outcome.append(run(trial.id))
    )
    thread.start()
    while thread.is_alive():
        assert reaper.reap_once(get_settings()).failed == 0
        thread.join(timeout=0.3)
    assert outcome == [TrialState.COMPLETE]


def test_overdue_waiting_trials_are_resent_only_from_an_empty_queue(
    local: Stack, studies: Studies
) -> None:
    purge()
    sid = studies.create(steps_spec(n_trials=2, max_parallel=2))
    assert queue_size() == 2
    with session_scope(local.db_url) as session:
        session.execute(update(Trial).where(Trial.study_id == sid)
                        .values(dispatched_at=utcnow() - timedelta(seconds=60)))
    assert reaper.reap_once(get_settings()).resent == 0  # still queued: late, not lost
    purge()
    assert reaper.reap_once(get_settings()).resent == 2
    assert queue_size() == 2
    assert all(utcnow() - t.dispatched_at < timedelta(seconds=10)  # type: ignore[operator]
               for t in studies.trials(sid))
    assert reaper.reap_once(get_settings()).resent == 0


def test_a_study_with_nothing_active_is_settled(local: Stack, studies: Studies) -> None:
    sid = studies.create(steps_spec(n_trials=1))
    with session_scope(local.db_url) as session:
        repo.fail_waiting_trials(session, sid, "lost in a test", utcnow())
    assert reaper.reap_once(get_settings()).settled == 1
    assert studies.study(sid).state == StudyState.COMPLETED
