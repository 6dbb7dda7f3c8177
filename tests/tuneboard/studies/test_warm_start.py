"""Warm start on real studies: trials are asked and told through Optuna over ``SqlStorage``
(what a worker does), judged against a real standard, promoted, and dispatched."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import optuna
import pytest
from sqlalchemy import func, select

from tuneboard.db import session_scope
from tuneboard.db.models import Study, Trial
from tuneboard.errors import InvalidInput
from tuneboard.optimization.params import external_params
from tuneboard.optimization.storage import SqlStorage
from tuneboard.spec.states import TrialOrigin
from tuneboard.standards import StandardDocument
from tuneboard.standards import service as standards
from tuneboard.studies import dispatch, verdicts, warm_start
from tuneboard.studies import repository as repo
from tuneboard.studies import service as studies
from tuneboard.teams.service import Principal, authenticate, create_team

SPACE = {
    "x": optuna.distributions.FloatDistribution(0.0, 1.0),
    "act": optuna.distributions.CategoricalDistribution(["relu", "tanh"]),
}
STANDARD: dict[str, Any] = {
    "name": "house",
    "rules": [{"param": "x", "range": {"low": 0.0, "high": 1.0}}],
    "acceptance": [{"metric": "val_accuracy", "op": ">=", "value": 0.5}],
}
SPEC: dict[str, Any] = {
    "name": "warm",
    "standard": "house",
    "objective": {"entrypoint": "anything", "metric": "val_accuracy", "direction": "maximize"},
    "search_space": {
        "x": {"type": "float", "low": 0.0, "high": 1.0},
        "act": {"type": "categorical", "choices": ["relu", "tanh"]},
    },
    "sampler": {"type": "tpe", "seed": 3},
    "budget": {"n_trials": 6, "max_parallel": 1},
}


def _spec(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(SPEC)
    out.update(changes)
    return out


def _principal(db_url: str, name: str) -> Principal:
    with session_scope(db_url) as session:
        _, key = create_team(session, name)
        return authenticate(session, key)


@pytest.fixture
def principal(db_url: str) -> Principal:
    principal = _principal(db_url, "team-a")
    with session_scope(db_url) as session:
        standards.create_standard(session, principal, StandardDocument.model_validate(STANDARD))
    return principal


def _create(db_url: str, principal: Principal, raw: dict[str, Any]) -> int:
    with session_scope(db_url) as session:
        study, _ = studies.create_study(session, principal, raw)
        return study.id


def _work(db_url: str, study_id: int, values: Sequence[float]) -> list[dict[str, Any]]:
    """Ask, tell, judge and dispatch the study's trials one by one, as a worker would;
    returns the parameters each trial ran with."""
    with session_scope(db_url) as session:
        study = repo.get_study(session, None, study_id)
        assert study is not None
        name = study.optuna_name
    loaded = optuna.load_study(study_name=name, storage=SqlStorage(db_url))
    ran = []
    for value in values:
        trial = loaded.ask(SPACE)  # claims the dispatcher's waiting trial
        ran.append(dict(trial.params))
        loaded.tell(trial, value)
        with session_scope(db_url) as session:
            row = repo.get_trial(session, study_id, trial.number)
            assert row is not None
            verdicts.judge(session, row, {"val_accuracy": value})
            dispatch.dispatch(session, study_id)
    return ran


def _trials(db_url: str, study_id: int) -> list[Trial]:
    with session_scope(db_url) as session:
        rows = list(session.scalars(
            select(Trial).where(Trial.study_id == study_id).order_by(Trial.number)))
        session.expunge_all()
        return rows


def _study(db_url: str, study_id: int) -> Study:
    with session_scope(db_url) as session:
        study = session.get(Study, study_id)
        assert study is not None
        session.expunge(study)
        return study


def test_a_study_begins_with_the_standards_promoted_configuration(
    db_url: str, principal: Principal
) -> None:
    first = _create(db_url, principal, _spec())
    assert _study(db_url, first).system_attrs == {}  # nothing promoted yet
    ran = _work(db_url, first, [0.6, 0.9, 0.7])
    assert {t.origin for t in _trials(db_url, first)} == {TrialOrigin.SAMPLER}
    with session_scope(db_url) as session:
        version = standards.promote_best(session, principal, first)
        assert version.version == 2
    second = _create(db_url, principal, _spec(name="next"))
    trials = _trials(db_url, second)
    assert [(t.number, t.origin) for t in trials] == [(0, TrialOrigin.WARM_START)]
    assert trials[0].system_attrs["fixed_params"] == ran[1]  # the promoted best, 0.9
    note = trials[0].system_attrs[warm_start.WARM_START_ATTR]
    assert note["source"]["standard"] == "house@2" and note["skipped"] == {}
    assert _work(db_url, second, [0.5])[0] == ran[1]
    assert _trials(db_url, second)[1].origin == TrialOrigin.SAMPLER
    # Turned off, the next study starts from the sampler.
    third = _create(db_url, principal, _spec(name="cold", warm_start={"promoted": False}))
    assert [t.origin for t in _trials(db_url, third)] == [TrialOrigin.SAMPLER]


def test_from_studies_gives_each_studys_top_k_accepted_as_the_first_trials(
    db_url: str, principal: Principal
) -> None:
    source = _create(db_url, principal, _spec(name="src"))
    ran = _work(db_url, source, [0.9, 0.2, 0.7, 0.8, 0.3, 0.6])  # 0.2 and 0.3 are rejected
    target = _create(db_url, principal, _spec(
        name="target", warm_start={"from_studies": [source], "top_k": 3, "promoted": False},
        budget={"n_trials": 5, "max_parallel": 2},
    ))
    trials = _trials(db_url, target)  # max_parallel=2: two now, the third once one ends
    assert [t.origin for t in trials] == [TrialOrigin.WARM_START] * 2
    _work(db_url, target, [0.1, 0.1, 0.1, 0.1, 0.1])
    trials = _trials(db_url, target)
    assert [t.origin for t in trials] == [TrialOrigin.WARM_START] * 3 + [TrialOrigin.SAMPLER] * 2
    assert [external_params(t.params, t.distributions) for t in trials[:3]] == [
        ran[0], ran[3], ran[2]]  # best first
    assert [t.system_attrs[warm_start.WARM_START_ATTR]["source"]["trial_number"]
            for t in trials[:3]] == [0, 3, 2]
    assert _study(db_url, target).sampler_trials == 5


def test_parameters_the_new_space_does_not_take_are_skipped_and_recorded(
    db_url: str, principal: Principal
) -> None:
    source = _create(db_url, principal, _spec(name="src"))
    _work(db_url, source, [0.9, 0.8])
    narrow = {"x": {"type": "float", "low": 0.0, "high": 1e-9},
              "act": {"type": "categorical", "choices": ["relu", "tanh"]},
              "depth": {"type": "int", "low": 1, "high": 3}}
    target = _create(db_url, principal, _spec(
        name="narrow", search_space=narrow,
        warm_start={"from_studies": [source], "top_k": 2, "promoted": False},
    ))
    (trial,) = _trials(db_url, target)
    assert trial.origin == TrialOrigin.WARM_START
    assert set(trial.system_attrs["fixed_params"]) == {"act"}  # x is out of range, depth drawn
    skipped = trial.system_attrs[warm_start.WARM_START_ATTR]["skipped"]
    assert list(skipped) == ["x"] and "between" in skipped["x"]
    configs = _study(db_url, target).system_attrs[warm_start.WARM_START_ATTR]
    assert len(configs["configs"]) + len(configs["dropped"]) == 2
    # Nothing of a configuration fits: dropped with its reason, the study starts cold.
    other = _create(db_url, principal, _spec(
        name="other", search_space={"depth": narrow["depth"]},
        warm_start={"from_studies": [source], "promoted": False},
    ))
    assert [t.origin for t in _trials(db_url, other)] == [TrialOrigin.SAMPLER]
    (dropped,) = _study(db_url, other).system_attrs[warm_start.WARM_START_ATTR]["dropped"]
    assert dropped["reason"] == "no parameter of it fits this study's search space"


def test_a_source_that_cannot_be_used_is_a_422_naming_its_place(
    db_url: str, principal: Principal
) -> None:
    elsewhere = _principal(db_url, "team-b")
    with session_scope(db_url) as session:
        standards.create_standard(session, elsewhere, StandardDocument.model_validate(STANDARD))
        standards.create_standard(session, principal, StandardDocument.model_validate(
            {**STANDARD, "name": "other"}))
    foreign = _create(db_url, elsewhere, _spec(name="theirs"))
    unrelated = _create(db_url, principal, _spec(name="unrelated", standard="other"))
    plain = _create(db_url, principal, _spec(name="plain", standard=None))
    with session_scope(db_url) as session:
        before = session.scalar(select(func.count()).select_from(Study))
    with pytest.raises(InvalidInput) as caught, session_scope(db_url) as session:
        studies.create_study(session, principal, _spec(
            name="bad", warm_start={"from_studies": [10**9, foreign, unrelated, plain]}))
    details = caught.value.details
    assert [d["field"] for d in details] == [f"warm_start.from_studies.{i}" for i in range(4)]
    assert "not found" in details[0]["reason"] and "not found" in details[1]["reason"]
    assert "other@1" in details[2]["reason"] and "no standard" in details[3]["reason"]
    with session_scope(db_url) as session:
        assert session.scalar(select(func.count()).select_from(Study)) == before
