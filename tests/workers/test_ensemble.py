"""Ensembles of a study's best trials, evaluated by a real Celery worker: SQLite with the
embedded broker, PostgreSQL with Redis; and a standard's ensemble criterion, judged once when a
study under it completes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.workers.conftest import Stack, Studies, wait_until
from tuneboard.db import session_scope
from tuneboard.db.models import Ensemble, EnsembleState, Study
from tuneboard.errors import Conflict, InvalidInput
from tuneboard.standards import StandardDocument
from tuneboard.standards import service as standards
from tuneboard.studies import ensemble
from tuneboard.studies import repository as repo


@pytest.fixture
def stack(shared_stack: Stack, client_env: Callable[[Stack], None]) -> Stack:
    client_env(shared_stack)
    return shared_stack


def digits_spec(**changes: Any) -> dict[str, Any]:
    return {
        "name": "digits-ensemble",
        "objective": {"builtin": "classifier", "dataset": "digits", "model": "mlp",
                      "metric": "val_accuracy", "direction": "maximize", "max_epochs": 3},
        "search_space": {"lr": {"type": "float", "low": 3e-3, "high": 3e-2, "log": True},
                         "hidden": {"type": "int", "low": 8, "high": 32}},
        "fixed": {"layers": 1},
        "callbacks": {"checkpoint": {"keep": ["latest", "best"], "monitor": "val_accuracy"}},
        "sampler": {"type": "random", "seed": 3},
        "budget": {"n_trials": 3, "max_parallel": 1},
        **changes,
    }


def ask(studies: Studies, study_id: int, k: int) -> int:
    with session_scope(studies.db_url) as session:
        study = repo.get_study(session, studies.principal.team_id, study_id)
        assert study is not None
        return ensemble.request_ensemble(session, studies.principal, study, k).id


def finished(studies: Studies, ensemble_id: int, stack: Stack) -> Ensemble:
    def done() -> Ensemble | None:
        with session_scope(studies.db_url) as session:
            row = session.get(Ensemble, ensemble_id)
            assert row is not None
            session.expunge(row)
            return row if row.state.is_finished() else None

    try:
        found: Ensemble = wait_until(done, timeout=90, message=f"ensemble {ensemble_id}")
    except AssertionError as err:
        raise AssertionError(f"{err}\n{stack.logs()}") from None
    return found


def test_an_ensemble_of_the_two_best_digits_trials(stack: Stack, studies: Studies) -> None:
    sid = studies.create(digits_spec())
    assert studies.wait_finished(sid, stack, timeout=180).state == "completed"
    trials = studies.trials(sid)
    assert [t.state for t in trials] == ["complete"] * 3
    best_first = sorted(trials, key=lambda t: (-(t.value or 0), t.number))

    result = finished(studies, ask(studies, sid, 2), stack)

    assert result.state == EnsembleState.COMPLETE, result.error
    assert result.members == [t.number for t in best_first[:2]]
    assert result.metric == "val_accuracy"
    assert result.value is not None and 0.5 < result.value <= 1.0
    assert result.member_values is not None and set(result.member_values) == {
        str(n) for n in result.members
    }
    assert result.best_single_value == max(result.member_values.values())
    assert result.gain == pytest.approx(result.value - result.best_single_value)
    # Each member is its best.pt on the study's own validation split: what the trial reported
    # at its best epoch of the checkpoint's monitor.
    for number in result.members:
        trial = next(t for t in trials if t.number == number)
        reported = [m["val_accuracy"] for m in studies.metrics(trial.id).values()]
        assert result.member_values[str(number)] == pytest.approx(max(reported), abs=1e-9)

    with session_scope(studies.db_url) as session:
        study = repo.get_study(session, studies.principal.team_id, sid)
        assert study is not None
        assert ensemble.latest_ensemble(session, study).id == result.id
        with pytest.raises(Conflict, match="k is 4 but the study has 3"):
            ensemble.request_ensemble(session, studies.principal, study, 4)
        with pytest.raises(InvalidInput, match="at least 2"):
            ensemble.request_ensemble(session, studies.principal, study, 1)


def test_a_missing_best_checkpoint_fails_the_ensemble_with_its_reason(
    stack: Stack, studies: Studies
) -> None:
    sid = studies.create(digits_spec(budget={"n_trials": 2, "max_parallel": 1}))
    assert studies.wait_finished(sid, stack, timeout=180).state == "completed"
    gone = studies.trials(sid)[0]
    assert gone.checkpoint_path is not None
    (Path(gone.checkpoint_path) / "best.pt").unlink()

    result = finished(studies, ask(studies, sid, 2), stack)

    assert result.state == EnsembleState.FAILED
    assert result.error is not None and f"trial {gone.number} has no best.pt" in result.error
    assert result.value is None and result.gain is None


def test_a_study_without_best_checkpoints_is_refused(stack: Stack, studies: Studies) -> None:
    sid = studies.create(digits_spec(callbacks={"checkpoint": {"keep": ["latest"]}},
                                     budget={"n_trials": 2, "max_parallel": 1}))
    with pytest.raises(Conflict, match="keeps no best checkpoints"):
        ask(studies, sid, 2)
    with session_scope(studies.db_url) as session:
        assert session.query(Ensemble).filter_by(study_id=sid).count() == 0


def publish(studies: Studies, name: str, acceptance: list[dict[str, Any]]) -> None:
    with session_scope(studies.db_url) as session:
        standards.create_standard(session, studies.principal, StandardDocument.model_validate(
            {"name": name, "acceptance": acceptance}))


def ensembles_of(studies: Studies, study_id: int) -> list[Ensemble]:
    with session_scope(studies.db_url) as session:
        rows = list(session.scalars(
            select(Ensemble).where(Ensemble.study_id == study_id).order_by(Ensemble.id)))
        session.expunge_all()
        return rows


def test_a_completed_study_under_an_ensemble_criterion_is_judged_by_one_ensemble(
    stack: Stack, studies: Studies
) -> None:
    # min_gain -1: an accuracy ensemble always clears it, so the test pins what is recorded.
    publish(studies, "digits-ensemble", [{"metric": "val_accuracy", "op": ">", "value": 0.0},
                                         {"ensemble": {"k": 2, "min_gain": -1.0}}])
    sid = studies.create(digits_spec(standard="digits-ensemble"))
    assert studies.wait_finished(sid, stack, timeout=180).state == "completed"
    trials = studies.trials(sid)
    assert [t.accepted for t in trials] == [True] * 3
    best_first = sorted(trials, key=lambda t: (-(t.value or 0), t.number))
    (asked,) = ensembles_of(studies, sid)  # asked for once, by the finishing transaction

    result = finished(studies, asked.id, stack)

    assert result.state == EnsembleState.COMPLETE, result.error
    assert result.created_by == "standard:digits-ensemble@1"
    assert result.members == [t.number for t in best_first[:2]]
    assert result.gain is not None and result.verdict is not None
    assert result.verdict == {
        "criterion": "an ensemble of the 2 best accepted trials gains >= -1 on the best of them",
        "k": 2, "min_gain": -1.0, "observed_gain": pytest.approx(result.gain), "passed": True,
        "pending": False, "reason": "", "standard": "digits-ensemble@1",
    }
    assert [e.id for e in ensembles_of(studies, sid)] == [result.id]


def test_fewer_accepted_trials_than_k_fail_the_criterion_with_the_reason(
    stack: Stack, studies: Studies
) -> None:
    publish(studies, "out-of-reach", [{"metric": "val_accuracy", "op": ">", "value": 0.5},
                                      {"ensemble": {"k": 2}}])
    # One epoch with a tiny learning rate: no trial reaches the accuracy asked for.
    sid = studies.create(digits_spec(
        standard="out-of-reach", budget={"n_trials": 2, "max_parallel": 1},
        objective={**digits_spec()["objective"], "max_epochs": 1},
        search_space={"lr": {"type": "float", "low": 1e-6, "high": 2e-6}},
        fixed={"layers": 1, "hidden": 8},
    ))
    assert studies.wait_finished(sid, stack, timeout=180).state == "completed"
    assert [t.accepted for t in studies.trials(sid)] == [False, False]

    (result,) = ensembles_of(studies, sid)

    assert result.state == EnsembleState.FAILED and result.members == []
    reason = "k is 2 but the study has 0 accepted complete trial(s) with checkpoints"
    assert result.error == reason
    assert result.verdict is not None and result.verdict["passed"] is False
    assert result.verdict["pending"] is False and result.verdict["reason"] == reason
    assert result.verdict["observed_gain"] is None


def test_a_standard_asking_for_an_ensemble_refuses_a_study_that_cannot_form_one(
    studies: Studies,
) -> None:
    publish(studies, "wants-ensemble", [{"ensemble": {"k": 3, "min_gain": 0.0}}])
    cases = {
        "callbacks.checkpoint.keep": digits_spec(callbacks={"checkpoint": {"keep": ["latest"]}}),
        "budget.n_trials": digits_spec(budget={"n_trials": 2, "max_parallel": 1}),
        "objective.validation.k_folds": digits_spec(objective={
            **digits_spec()["objective"], "validation": {"k_folds": 3}}),
    }
    for field, spec in cases.items():
        with pytest.raises(InvalidInput) as caught:
            studies.create({**spec, "standard": "wants-ensemble"})
        assert [d["field"] for d in caught.value.details] == [field]
        assert "standard wants-ensemble@1's acceptance asks for an ensemble of 3 trials" in (
            caught.value.details[0]["reason"])
    with session_scope(studies.db_url) as session:
        assert session.scalars(select(Study).where(
            Study.team_id == studies.principal.team_id)).first() is None
