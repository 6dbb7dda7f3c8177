from __future__ import annotations

import uuid

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tuneboard.db import session_scope
from tuneboard.db.models import Study, Trial
from tuneboard.db.queries import allocate_trial_numbers
from tuneboard.studies import counts


def _study(session: Session) -> int:
    study = Study(
        name="s",
        optuna_name=f"s-{uuid.uuid4().hex}",
        directions=["minimize"],
        state="running",
        user_attrs={},
        system_attrs={},
    )
    session.add(study)
    session.flush()
    return study.id


def _add(session: Session, study_id: int, state: str) -> int:
    number = allocate_trial_numbers(session, study_id, 1)
    trial = Trial(
        study_id=study_id,
        number=number,
        state=state,
        params={},
        distributions={},
        intermediate_values={},
        user_attrs={},
        system_attrs={},
    )
    session.add(trial)
    session.flush()
    return trial.id


def _set(session: Session, trial_id: int, state: str) -> None:
    session.execute(update(Trial).where(Trial.id == trial_id).values(state=state))


def _count(session: Session, study_id: int) -> dict[str, int]:
    """The uncached truth: one full count of the study's trials."""
    rows = session.execute(
        select(Trial.state, func.count()).where(Trial.study_id == study_id).group_by(Trial.state)
    )
    return {state: count for state, count in rows}


def _check(db_url: str, study_ids: list[int]) -> dict[int, dict[str, int]]:
    with session_scope(db_url) as session:
        cached = counts.trial_counts_by_study(session, study_ids)
        truth = {sid: _count(session, sid) for sid in study_ids}
    assert cached == truth
    return cached


def test_counts_follow_every_transition(db_url: str) -> None:
    counts.clear()
    with session_scope(db_url) as session:
        a, b = _study(session), _study(session)
        waiting = [_add(session, a, "waiting") for _ in range(3)]
        _add(session, a, "complete")
        _add(session, b, "pruned")
    assert _check(db_url, [a, b]) == {a: {"waiting": 3, "complete": 1}, b: {"pruned": 1}}

    with session_scope(db_url) as session:
        _set(session, waiting[0], "running")
        _set(session, waiting[1], "complete")
        _add(session, a, "running")
        _add(session, b, "waiting")
    _check(db_url, [a, b])

    with session_scope(db_url) as session:
        _set(session, waiting[0], "fail")
        _set(session, waiting[2], "running")
        for _ in range(5):
            _add(session, a, "complete")
    assert _check(db_url, [a])[a] == {"complete": 7, "fail": 1, "running": 2}
    _check(db_url, [b, a])

    counts.clear()
    _check(db_url, [a, b])


def test_a_study_without_trials_and_one_that_is_gone(db_url: str) -> None:
    counts.clear()
    with session_scope(db_url) as session:
        empty, doomed = _study(session), _study(session)
        _add(session, doomed, "waiting")
    assert _check(db_url, [empty, doomed]) == {empty: {}, doomed: {"waiting": 1}}
    with session_scope(db_url) as session:
        session.execute(Trial.__table__.delete().where(Trial.study_id == doomed))
    assert _check(db_url, [empty, doomed]) == {empty: {}, doomed: {}}
    with session_scope(db_url) as session:
        _add(session, empty, "running")
    assert _check(db_url, [empty])[empty] == {"running": 1}
