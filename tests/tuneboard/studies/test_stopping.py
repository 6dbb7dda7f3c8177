"""The dispatcher's ``stopping`` rules on real studies: trials are asked and told through Optuna
over ``SqlStorage`` (what a worker does), judged against a real standard, and dispatched."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import optuna
import pytest
from pydantic import ValidationError

from tests.tuneboard.standards.support import baseline
from tuneboard.db import session_scope
from tuneboard.db.models import Study
from tuneboard.optimization.storage import SqlStorage
from tuneboard.spec import StudySpec
from tuneboard.spec.states import StudyState, TrialState
from tuneboard.standards import service as standards
from tuneboard.studies import dispatch, verdicts
from tuneboard.studies import repository as repo
from tuneboard.studies import service as studies
from tuneboard.teams.service import Principal, authenticate, create_team

SPACE = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
SPEC: dict[str, Any] = {
    "name": "plateau",
    "objective": {"entrypoint": "anything", "metric": "val_accuracy", "direction": "maximize"},
    "search_space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
    "sampler": {"type": "random", "seed": 3},
    "budget": {"n_trials": 40, "max_parallel": 1},
}


def _spec(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(SPEC)
    out.update(changes)
    return out


@pytest.fixture
def principal(db_url: str) -> Principal:
    with session_scope(db_url) as session:
        _, key = create_team(session, "team-a")
        return authenticate(session, key)


def _create(db_url: str, principal: Principal, raw: dict[str, Any]) -> int:
    with session_scope(db_url) as session:
        study, _ = studies.create_study(session, principal, raw)
        return study.id


def _work(
    db_url: str, study_id: int, values: Sequence[float], *, judge: bool = False
) -> list[float]:
    """Run the study's waiting trials one by one, as a worker would, until ``values`` run out
    or the study finishes; returns the values told."""
    with session_scope(db_url) as session:
        study = repo.get_study(session, None, study_id)
        assert study is not None
        name = study.optuna_name
    loaded = optuna.load_study(study_name=name, storage=SqlStorage(db_url))
    told: list[float] = []
    for value in values:
        with session_scope(db_url) as session:
            study = repo.get_study(session, None, study_id)
            assert study is not None
            if study.state.is_finished():
                break
            assert repo.count_active_and_failed_trials(session, study_id).active == 1
        trial = loaded.ask(SPACE)  # claims the dispatcher's waiting trial
        loaded.tell(trial, value)
        told.append(value)
        with session_scope(db_url) as session:
            if judge:
                row = repo.get_trial(session, study_id, trial.number)
                assert row is not None
                verdicts.judge(session, row, {"val_accuracy": value, "generalization_gap": 0.0})
            dispatch.dispatch(session, study_id)
    return told


def _study(db_url: str, study_id: int) -> Study:
    with session_scope(db_url) as session:
        study = repo.get_study(session, None, study_id)
        assert study is not None
        session.expunge(study)
        return study


def test_a_plateau_ends_the_study_completed_with_its_reason(
    db_url: str, principal: Principal
) -> None:
    study_id = _create(db_url, principal, _spec(stopping={"patience": 3, "min_delta": 0.01}))
    # 0.5 then 0.9; 0.905 is an improvement smaller than min_delta; three trials pass without one.
    told = _work(db_url, study_id, [0.5, 0.9, 0.905, 0.1, 0.2, 0.3, 0.99, 0.99])
    assert told == [0.5, 0.9, 0.905, 0.1, 0.2]
    study = _study(db_url, study_id)
    assert study.state == StudyState.COMPLETED
    assert study.stop_reason is not None
    assert study.stop_reason.startswith("stopping.patience")
    assert "(0.905)" in study.stop_reason and "last 3 finished trials" in study.stop_reason
    assert study.sampler_trials == 5


def test_improvements_keep_the_study_going_until_its_budget(
    db_url: str, principal: Principal
) -> None:
    study_id = _create(db_url, principal, _spec(
        stopping={"patience": 2}, budget={"n_trials": 6, "max_parallel": 1}))
    told = _work(db_url, study_id, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    assert told == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    study = _study(db_url, study_id)
    assert study.state == StudyState.COMPLETED and study.stop_reason is None


def test_under_a_standard_only_accepted_trials_count(db_url: str, principal: Principal) -> None:
    with session_scope(db_url) as session:
        doc = baseline(acceptance=[{"metric": "val_accuracy", "op": ">=", "value": 0.8}],
                       rules=[], defaults={})
        standards.create_standard(session, principal, doc)
    study_id = _create(db_url, principal, _spec(
        standard="vision-baseline", stopping={"patience": 2}))
    # Raw values keep improving, but below the 0.8 bar: there is no accepted best to plateau on.
    assert _work(db_url, study_id, [0.1, 0.2, 0.3, 0.4], judge=True) == [0.1, 0.2, 0.3, 0.4]
    assert _study(db_url, study_id).state.is_active()
    # 0.85 is accepted; neither 0.79 nor 0.5 is, so the best accepted value stalls for two.
    told = _work(db_url, study_id, [0.85, 0.79, 0.5, 0.9], judge=True)
    assert told == [0.85, 0.79, 0.5]
    study = _study(db_url, study_id)
    assert study.state == StudyState.COMPLETED
    assert study.stop_reason is not None
    assert "best accepted val_accuracy (0.85)" in study.stop_reason


def test_the_terminator_stops_a_study_that_has_converged(
    db_url: str, principal: Principal
) -> None:
    study_id = _create(db_url, principal, _spec(
        stopping={"terminator": {"regret_bound": 0.5, "min_n_trials": 5}}))
    # A flat objective: the regret bound soon falls below 0.5.
    told = _work(db_url, study_id, [0.5 + 0.001 * math.sin(i) for i in range(30)])
    study = _study(db_url, study_id)
    assert study.state == StudyState.COMPLETED, study.error
    assert 5 <= len(told) < 30
    assert study.stop_reason is not None and study.stop_reason.startswith("stopping.terminator")
    with session_scope(db_url) as session:
        counts = repo.count_active_and_failed_trials(session, study_id)
        assert counts.active == 0
        trials = repo.list_trials(session, study_id, limit=100)
        assert all(t.state == TrialState.COMPLETE for t in trials)


def test_a_tight_regret_bound_lets_the_budget_end_the_study(
    db_url: str, principal: Principal
) -> None:
    study_id = _create(db_url, principal, _spec(
        stopping={"terminator": {"regret_bound": 1e-12, "min_n_trials": 5}},
        budget={"n_trials": 8, "max_parallel": 1}))
    told = _work(db_url, study_id, [float(i) / 10 for i in range(10)])
    assert len(told) == 8
    study = _study(db_url, study_id)
    assert study.state == StudyState.COMPLETED and study.stop_reason is None


@pytest.mark.parametrize(
    ("stopping", "field"),
    [
        ({}, "stopping.patience"),
        ({"patience": 0}, "stopping.patience"),
        ({"patience": 3, "terminator": {"regret_bound": 0.1}}, "stopping"),
        ({"terminator": {"regret_bound": 0.1}, "min_delta": 0.1}, "stopping.min_delta"),
        ({"terminator": {"regret_bound": 0}}, "stopping.terminator.regret_bound"),
        ({"patience": 3, "min_delta": -1}, "stopping.min_delta"),
        ({"patience": 3, "unknown": 1}, "stopping.unknown"),
    ],
)
def test_bad_stopping_rules_name_their_field(stopping: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        StudySpec.model_validate(_spec(stopping=stopping))
    fields = {".".join(str(p) for p in e["loc"]) for e in caught.value.errors()}
    assert field in fields, fields


def test_a_multi_objective_study_cannot_stop_on_a_plateau() -> None:
    raw = _spec(
        objective={"entrypoint": "anything", "metrics": ["a", "b"],
                   "directions": ["maximize", "minimize"]},
        sampler={"type": "nsga2"},
        stopping={"patience": 3},
    )
    with pytest.raises(ValidationError) as caught:
        StudySpec.model_validate(raw)
    assert ("stopping",) in [tuple(e["loc"]) for e in caught.value.errors()]


def test_a_stopping_rule_round_trips() -> None:
    for rule in ({"patience": 4, "min_delta": 0.5}, {"terminator": {"regret_bound": 0.1}}):
        spec = StudySpec.model_validate(_spec(stopping=rule))
        assert StudySpec.model_validate(spec.model_dump(mode="json")) == spec
