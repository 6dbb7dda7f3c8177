"""The two queries every layer above shares: "the best trials" and "the next trial numbers".

Each has exactly one definition here; Optuna's storage, the leaderboards, the standards and the
study service all call these.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, select, true, update
from sqlalchemy.orm import QueryableAttribute, Session
from sqlalchemy.orm.util import AliasedClass

from tuneboard.db.models import Study, Trial
from tuneboard.spec.states import TrialState

__all__ = ["allocate_trial_numbers", "ranked_trials"]


def ranked_trials(
    study_id: int | ColumnElement[int] | QueryableAttribute[int],
    *,
    maximize: bool,
    accepted_only: bool = False,
    columns: tuple[Any, ...] | None = None,
    trial: type[Trial] | AliasedClass[Trial] = Trial,
) -> Select[Any]:
    """A study's complete trials best first by the first objective (``value``) in its
    direction, ties broken by the lower trial number; ``accepted_only`` keeps the trials a
    standard accepted. Trials whose value is NaN (stored as NULL) are not ranked.

    The rows are ``columns`` (default: the ``trial`` entity). ``trial`` is an alias when the
    query is a subquery correlated to ``study_id`` (an outer ``Study.id``). Served by the
    ``trials (study_id, state, value)`` index, or the accepted-only partial index.
    """
    conditions = [
        trial.study_id == study_id,
        trial.state == TrialState.COMPLETE,
        trial.value.is_not(None),
    ]
    if accepted_only:
        conditions.append(trial.accepted == true())
    best_first = trial.value.desc() if maximize else trial.value.asc()
    return select(*(columns or (trial,))).where(*conditions).order_by(best_first, trial.number)


def allocate_trial_numbers(db: Session | Connection, study_id: int, count: int) -> int:
    """Reserve ``count`` consecutive trial numbers of the study; returns the first.

    The update locks the study row until the transaction ends, so numbers are unique and,
    within a study, trial ids grow in commit order: every writer of trials calls this before it
    inserts them (the caches of finished trials rely on it). KeyError when there is no such
    study.
    """
    next_number = db.execute(
        update(Study)
        .where(Study.id == study_id)
        .values(next_trial_number=Study.next_trial_number + count)
        .returning(Study.next_trial_number)
    ).scalar_one_or_none()
    if next_number is None:
        raise KeyError(f"No study with study_id {study_id} exists.")
    return int(next_number) - count
