"""Ensembles of a study's best trials, evaluated by a real Celery worker: SQLite with the
embedded broker, PostgreSQL with Redis."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.workers.conftest import Stack, Studies, wait_until
from tuneboard.db import session_scope
from tuneboard.db.models import Ensemble, EnsembleState
from tuneboard.errors import Conflict, InvalidInput
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
