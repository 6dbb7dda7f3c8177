"""The runner in this process (no Celery): claim, ask, run, report, tell, dispatch."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import optuna
import pytest
from sqlalchemy import event, select

from tests.workers.conftest import Stack, Studies, steps_spec, wait_until
from tuneboard.config import get_settings
from tuneboard.db import session_scope
from tuneboard.db.engine import get_engine
from tuneboard.db.models import Trial
from tuneboard.optimization.storage import SqlStorage
from tuneboard.queue import celery_client
from tuneboard.spec import StudyState, TrialState
from tuneboard.standards import StandardDocument
from tuneboard.standards import service as standards
from tuneboard.studies import service, verdicts
from workers import reporting, runner
from workers.broker import ready_messages


def queue_size(queue: str = "default") -> int:
    count = ready_messages(celery_client(), queue)
    assert count is not None
    return count


def purge(queue: str = "default") -> None:
    with celery_client().pool.acquire(block=True) as conn:
        conn.default_channel.queue_purge(queue)


def run(trial_id: int, worker: str = "test") -> str | None:
    """The trial's final state, or None when there was nothing to run."""
    done = runner.run_trial(trial_id, worker=worker, settings=get_settings())
    return done.state if done is not None else None


def run_waiting(studies: Studies, study_id: int, limit: int = 50) -> list[str | None]:
    """Run the study's waiting trials one by one, as a single worker would, until none is left."""
    outcomes: list[str | None] = []
    for _ in range(limit):
        waiting = [t.id for t in studies.trials(study_id) if t.state == TrialState.WAITING]
        if not waiting:
            return outcomes
        outcomes.append(run(waiting[0]))
    raise AssertionError("the study never ran out of waiting trials")


def test_study_runs_to_completion_with_metrics_and_bookkeeping(
    local: Stack, studies: Studies
) -> None:
    sid = studies.create(steps_spec(n_trials=3, max_parallel=2, steps=3))
    assert run_waiting(studies, sid) == [TrialState.COMPLETE] * 3

    study = studies.study(sid)
    assert study.state == StudyState.COMPLETED and study.started_at is not None
    trials = studies.trials(sid)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    settings = get_settings()
    for t in trials:
        x = t.params["x"]
        assert t.value == (x - 2.0) ** 2 + 1.0 / 3
        assert t.epochs_run == 3 and t.worker == "test" and t.device == "cpu"
        assert t.checkpoint_path == str(settings.checkpoint_root / str(sid) / str(t.number))
        assert t.heartbeat_at is not None and t.error is None
        metrics = studies.metrics(t.id)
        assert sorted(metrics) == [1, 2, 3]
        assert set(metrics[1]) == {"loss", "resumed_at", "seed"}
        assert metrics[1]["seed"] == t.seed
    frozen = SqlStorage(local.db_url).get_trial(trials[0].id)
    assert sorted(frozen.intermediate_values) == [1, 2, 3]


def test_a_second_delivery_finds_nothing_to_run(local: Stack, studies: Studies) -> None:
    sid = studies.create(steps_spec(n_trials=1))
    trial = studies.trials(sid)[0]
    assert run(trial.id, worker="a") == TrialState.COMPLETE
    assert run(trial.id, worker="b") is None
    assert run(10**9, worker="b") is None
    (again,) = studies.trials(sid)
    assert again.worker == "a" and again.state == TrialState.COMPLETE


def test_an_objective_error_fails_the_trial_with_type_message_and_traceback(
    local: Stack, studies: Studies
) -> None:
    sid = studies.create(steps_spec(n_trials=2, fail_at=2))
    assert run_waiting(studies, sid) == [TrialState.FAIL, TrialState.FAIL]
    trial = studies.trials(sid)[0]
    assert trial.error is not None
    assert trial.error.startswith("RuntimeError: boom at step 2")
    assert "tuneboard_worker_test_objectives.py" in trial.error  # the traceback's tail
    assert trial.epochs_run == 1
    frozen = SqlStorage(local.db_url).get_trial(trial.id)
    assert frozen.state == optuna.trial.TrialState.FAIL
    assert frozen.system_attrs["fail_reason"] == trial.error
    assert studies.study(sid).state == StudyState.COMPLETED


def test_a_non_finite_result_fails_the_trial(local: Stack, studies: Studies) -> None:
    sid = studies.create(steps_spec(n_trials=1, nan=True))
    assert run_waiting(studies, sid) == [TrialState.FAIL]
    assert studies.trials(sid)[0].error == (
        "ObjectiveResultError: the objective returned nan for loss"
    )


def test_an_unknown_objective_fails_the_trial(local: Stack, studies: Studies) -> None:
    spec = steps_spec(n_trials=1)
    spec["objective"]["entrypoint"] = "no-such-objective"
    sid = studies.create(spec)
    assert run_waiting(studies, sid) == [TrialState.FAIL]
    error = studies.trials(sid)[0].error
    assert error is not None and error.startswith("UnknownObjective: no objective")


def test_the_pruner_stops_a_trial_and_its_value_is_the_last_report(
    local: Stack, studies: Studies
) -> None:
    spec = steps_spec(n_trials=1, steps=5)
    spec["pruner"] = {"type": "threshold", "upper": 0.5}
    sid = studies.create(spec)
    assert run_waiting(studies, sid) == [TrialState.PRUNED]
    trial = studies.trials(sid)[0]
    assert trial.state == TrialState.PRUNED and trial.epochs_run == 1
    assert trial.value == (trial.params["x"] - 2.0) ** 2 + 1.0


def test_the_pruners_rungs_are_stored_with_the_reports_not_in_writes_of_their_own(
    local: Stack, studies: Studies, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = steps_spec(n_trials=3, steps=9)
    spec["pruner"] = {"type": "hyperband", "min_resource": 1, "max_resource": 9,
                      "reduction_factor": 3}
    sid = studies.create(spec)
    written: list[str] = []
    write = SqlStorage.set_trial_system_attr

    def spy(storage: SqlStorage, trial_id: int, key: str, value: Any) -> None:
        written.append(key)
        write(storage, trial_id, key, value)

    monkeypatch.setattr(SqlStorage, "set_trial_system_attr", spy)
    outcomes = run_waiting(studies, sid)
    errors = [t.error for t in studies.trials(sid)]
    assert set(outcomes) <= {TrialState.COMPLETE, TrialState.PRUNED} and len(outcomes) == 3, errors
    assert written == []  # no transaction of their own
    storage = SqlStorage(local.db_url)
    for trial in studies.trials(sid):
        frozen = storage.get_trial(trial.id)
        rungs = {k: v for k, v in frozen.system_attrs.items() if k.startswith("completed_rung_")}
        # Every bracket's first rung comes by step 9; a rung records the value at its step.
        assert rungs, frozen.system_attrs
        assert set(rungs.values()) <= set(frozen.intermediate_values.values())


def test_a_short_trials_parameters_reports_and_outcome_are_one_update_of_its_row(
    local: Stack, studies: Studies, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial whose reports are all handed over at its end (no checkpoint flushed them, the
    writer had not started) sets its parameters, epochs, intermediate values and outcome in
    one update of its row, besides the claim's."""
    monkeypatch.setattr(reporting, "LINGER_S", 30.0)  # the writer waits for the hand-over
    sid = studies.create(steps_spec(n_trials=2, steps=3, checkpoint=False))
    (first,) = studies.trials(sid)
    assert run(first.id) == TrialState.COMPLETE  # the study's distributions are known after it
    (second,) = (t for t in studies.trials(sid) if t.state == TrialState.WAITING)
    sent: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(" ".join(statement.split()[:2]))

    engine = get_engine(local.db_url)
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        assert run(second.id) == TrialState.COMPLETE
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
    assert sent.count("UPDATE trials") == 2, sent  # the claim's and the outcome's
    frozen = SqlStorage(local.db_url).get_trial(second.id)
    assert frozen.state == optuna.trial.TrialState.COMPLETE and list(frozen.params) == ["x"]
    assert sorted(frozen.intermediate_values) == [1, 2, 3]
    (row,) = (t for t in studies.trials(sid) if t.id == second.id)
    assert row.epochs_run == 3 and sorted(studies.metrics(second.id)) == [1, 2, 3]


def test_the_parameters_are_stored_while_the_trial_runs_before_its_first_report(
    local: Stack, studies: Studies
) -> None:
    sid = studies.create(steps_spec(n_trials=1, steps=1, sleep_s=4.0))
    trial_id = studies.trials(sid)[0].id
    thread = threading.Thread(target=lambda: run(trial_id))
    thread.start()
    try:
        running = wait_until(lambda: next((t for t in studies.trials(sid) if t.params), None),
                             timeout=30, message="the trial's parameters stored")
        assert running.state == TrialState.RUNNING and not running.epochs_run
        assert list(running.params) == ["x"]
    finally:
        thread.join(timeout=60)
    assert studies.trials(sid)[0].state == TrialState.COMPLETE


def test_a_trial_that_fails_before_its_first_report_keeps_its_parameters(
    local: Stack, studies: Studies
) -> None:
    sid = studies.create(steps_spec(n_trials=1, fail_at=1))
    trial_id = studies.trials(sid)[0].id
    assert run(trial_id) == TrialState.FAIL
    failed = studies.trials(sid)[0]
    assert failed.error is not None and "boom at step 1" in failed.error
    assert list(failed.params) == ["x"] and -5.0 <= failed.params["x"] <= 5.0
    assert SqlStorage(local.db_url).get_trial(trial_id).params == failed.params


def test_a_trial_whose_last_writes_fail_fails_with_why_and_without_them(
    local: Stack, studies: Studies
) -> None:
    """Its parameters are handed over to the finish (no report came before the objective
    ended), and another trial of the study already gave ``x`` another kind of distribution."""
    sid = studies.create(steps_spec(n_trials=1, steps=0))
    study = optuna.load_study(study_name=studies.study(sid).optuna_name,
                              storage=SqlStorage(local.db_url))
    study.add_trial(optuna.trial.create_trial(
        params={"x": "a"}, distributions={"x": optuna.distributions.CategoricalDistribution(["a"])},
        value=1.0,
    ))
    trial_id = next(t.id for t in studies.trials(sid) if t.state == TrialState.WAITING)
    assert run(trial_id) == TrialState.FAIL
    failed = next(t for t in studies.trials(sid) if t.id == trial_id)
    assert failed.error is not None
    assert failed.error.startswith("RuntimeError: storing the trial's reports failed: ValueError")
    assert failed.params == {} and studies.metrics(trial_id) == {}
    assert failed.system_attrs["fail_reason"] == failed.error


def test_enqueued_parameters_are_used(local: Stack, studies: Studies) -> None:
    sid = studies.create(steps_spec(n_trials=1))
    with session_scope(local.db_url) as session:
        service.enqueue_trial(session, studies.principal, sid, {"x": 1.5})
    run_waiting(studies, sid)
    manual = [t for t in studies.trials(sid) if t.origin == "manual"]
    assert len(manual) == 1 and manual[0].params == {"x": 1.5}
    assert manual[0].state == TrialState.COMPLETE


def test_multi_objective_values(local: Stack, studies: Studies) -> None:
    spec = steps_spec(n_trials=2)
    spec["objective"].update(metric=["loss", "resumed_at"], direction=["minimize", "maximize"])
    sid = studies.create(spec)
    assert run_waiting(studies, sid) == [TrialState.COMPLETE, TrialState.COMPLETE]
    for t in studies.trials(sid):
        assert t.values is not None and len(t.values) == 2 and t.values[1] == 1.0


def test_cancel_stops_the_running_trial_within_a_step(local: Stack, studies: Studies) -> None:
    sid = studies.create(steps_spec(n_trials=3, max_parallel=2, steps=40, sleep_s=0.3))
    first = studies.trials(sid)[0]
    outcome: list[Any] = []
    thread = threading.Thread(
        target=lambda: outcome.append(run(first.id))
    )
    thread.start()
    wait_until(lambda: studies.trials(sid)[0].epochs_run >= 2, timeout=30,
               message="two steps of the first trial")
    studies.cancel(sid)
    at_cancel = studies.trials(sid)[0].epochs_run
    assert studies.study(sid).state == "cancelling"  # until its running trial has ended
    thread.join(timeout=30)
    assert outcome == [TrialState.FAIL]
    assert studies.study(sid).state == "cancelled"
    trials = studies.trials(sid)
    assert trials[0].error == "study cancelled"
    # A poll at most every second, steps of 0.3 s: at most four more steps, not the 40.
    assert trials[0].epochs_run <= at_cancel + 4
    assert all(t.state == TrialState.FAIL for t in trials)
    assert trials[1].error == "study cancelled before this trial started"
    assert run_waiting(studies, sid) == []


def test_a_trial_whose_study_is_gone_from_the_queue_is_not_started(
    local: Stack, studies: Studies
) -> None:
    sid = studies.create(steps_spec(n_trials=1))
    studies.cancel(sid)
    trial = studies.trials(sid)[0]
    assert run(trial.id) is None
    with session_scope(local.db_url) as session:
        assert session.scalar(select(Trial.worker).where(Trial.id == trial.id)) is None


def test_the_next_trial_is_kept_to_run_here_or_sent(local: Stack, studies: Studies) -> None:
    purge()
    sid = studies.create(steps_spec(n_trials=3))
    purge()
    first = studies.trials(sid)[0]
    done = runner.run_trial(first.id, worker="t", settings=get_settings(),
                            keep_next=lambda queue: True)
    assert done is not None and done.dispatched == [] and done.kept is not None
    assert done.queue == "default" and queue_size() == 0
    second = runner.run_trial(done.kept, worker="t", settings=get_settings(),
                              keep_next=lambda queue: False)
    assert second is not None and second.state == TrialState.COMPLETE and second.kept is None
    assert len(second.dispatched) == 1 and queue_size() == 1
    assert run_waiting(studies, sid) == [TrialState.COMPLETE]
    assert studies.study(sid).state == StudyState.COMPLETED


def test_trials_of_a_study_with_a_standard_get_a_verdict(local: Stack, studies: Studies) -> None:
    document = StandardDocument.model_validate({
        "name": "quad", "rules": [],
        "acceptance": [{"metric": "loss", "op": "<=", "value": 1.5}],
    })
    with session_scope(local.db_url) as session:
        standards.create_standard(session, studies.principal, document)
    sid = studies.create({**steps_spec(n_trials=4, sampler="tpe"), "standard": "quad"})
    assert run_waiting(studies, sid) == [TrialState.COMPLETE] * 4
    storage = SqlStorage(local.db_url)
    for t in studies.trials(sid):
        assert t.value is not None and t.verdict is not None
        assert t.accepted == (t.value <= 1.5)
        attrs = storage.get_trial(t.id).system_attrs
        assert attrs[verdicts.FINAL_METRICS_ATTR]["loss"] == t.value


def test_a_study_past_its_timeout_starts_no_waiting_trial(local: Stack, studies: Studies) -> None:
    spec = steps_spec(n_trials=4, max_parallel=2)
    spec["budget"]["timeout_s"] = 60
    sid = studies.create(spec)
    first, second = [t.id for t in studies.trials(sid)]
    assert run(first) == TrialState.COMPLETE
    with session_scope(local.db_url) as session:
        study = service.repo.lock_study(session, sid)
        assert study is not None and study.started_at is not None
        study.started_at = study.started_at - timedelta(seconds=61)
    assert run(second) is None
    trials = {t.id: t for t in studies.trials(sid)}
    assert trials[second].state == TrialState.FAIL and trials[second].error == runner.TIMED_OUT
    assert all(t.state != TrialState.WAITING for t in trials.values())
