"""The queries behind Optuna over HTTP (``tuneboard.studies.remote``): every read is scoped to
a team, so another team's study or trial is simply not found."""

from __future__ import annotations

from collections.abc import Collection
from typing import NamedTuple

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from tuneboard.db.models import Study, Trial


class StudyScope(NamedTuple):
    study_id: int
    standard_version_id: int | None


class TrialScope(NamedTuple):
    trial_id: int
    study_id: int
    standard_version_id: int | None


def study_scope(session: Session, team_id: int, study_id: int) -> StudyScope | None:
    row = session.execute(
        select(Study.id, Study.standard_version_id).where(
            Study.id == study_id, Study.team_id == team_id
        )
    ).one_or_none()
    return None if row is None else StudyScope(*row)


def trial_scope(session: Session, team_id: int, trial_id: int) -> TrialScope | None:
    row = session.execute(
        select(Trial.id, Trial.study_id, Study.standard_version_id)
        .join(Study, Study.id == Trial.study_id)
        .where(Trial.id == trial_id, Study.team_id == team_id)
    ).one_or_none()
    return None if row is None else TrialScope(*row)


def study_id_by_optuna_name(session: Session, team_id: int, names: Collection[str]) -> int | None:
    """The team's study whose Optuna name is one of ``names``, the first of them preferred."""
    rows = session.execute(
        select(Study.id, Study.optuna_name).where(
            Study.team_id == team_id, Study.optuna_name.in_(list(names))
        )
    ).all()
    by_name = {name: study_id for study_id, name in rows}
    return next((by_name[n] for n in names if n in by_name), None)


def optuna_name_taken(session: Session, optuna_name: str) -> bool:
    return bool(session.scalar(select(exists().where(Study.optuna_name == optuna_name))))


def team_studies(
    session: Session, team_id: int, *, limit: int, after_id: int | None = None
) -> list[Study]:
    """The team's studies, oldest first, after ``after_id``."""
    stmt = select(Study).where(Study.team_id == team_id)
    if after_id is not None:
        stmt = stmt.where(Study.id > after_id)
    return list(session.scalars(stmt.order_by(Study.id).limit(limit)))


def has_trials(session: Session, study_id: int) -> bool:
    return bool(session.scalar(select(exists().where(Trial.study_id == study_id))))
