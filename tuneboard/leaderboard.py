"""Ranking queries: a study's complete trials, and the best trial of each of a team's studies.

Both rank by the first objective in its direction and page by keyset (the last row's value and
number), so a page costs an index range scan on ``trials (study_id, state, value)`` however deep
it is. Trials whose value is NaN (stored as NULL) are not ranked.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from tuneboard.db.models import Standard, StandardVersion, Study, Trial
from tuneboard.db.queries import ranked_trials
from tuneboard.spec import StandardRef

__all__ = [
    "Ranked",
    "StudyBest",
    "StudyPosition",
    "TeamPosition",
    "study_leaderboard",
    "team_leaderboard",
]


@dataclass(frozen=True)
class Ranked:
    rank: int
    trial: Trial


@dataclass(frozen=True)
class StudyPosition:
    """Where a page of a study's leaderboard ended: the rank, value and number of its last row."""

    rank: int
    value: float
    number: int


def study_leaderboard(
    session: Session,
    study: Study,
    *,
    limit: int,
    after: StudyPosition | None = None,
    accepted_only: bool = False,
) -> list[Ranked]:
    maximize = study.maximizes
    stmt = ranked_trials(study.id, maximize=maximize, accepted_only=accepted_only)
    if after is not None:
        beyond = Trial.value < after.value if maximize else Trial.value > after.value
        stmt = stmt.where(
            or_(beyond, and_(Trial.value == after.value, Trial.number > after.number))
        )
    rows = session.scalars(stmt.limit(limit))
    start = after.rank if after is not None else 0
    return [Ranked(start + i + 1, trial) for i, trial in enumerate(rows)]


@dataclass(frozen=True)
class StudyBest:
    """The best trial of one study, ranked among the studies with the same metric."""

    rank: int
    study: Study
    trial: Trial
    metric: str
    direction: str
    dataset: str | None
    score: float


@dataclass(frozen=True)
class TeamPosition:
    """Where a page of the team leaderboard ended."""

    rank: int
    metric: str
    score: float
    study_id: int


def team_leaderboard(
    session: Session,
    team_id: int,
    *,
    limit: int,
    after: TeamPosition | None = None,
    standard: StandardRef | None = None,
    dataset: str | None = None,
    metric: str | None = None,
    accepted_only: bool = False,
) -> list[StudyBest]:
    """The best complete trial of each of the team's studies, grouped by the first objective's
    metric and ranked within a metric (direction-aware: ``score`` is the value, negated when
    maximised, so lower is better everywhere). ``standard`` keeps the studies under that
    standard: any of its versions, or only version N."""
    direction = func.lower(Study.directions[0].as_string())
    metric_expr = func.coalesce(
        Study.spec[("objective", "metric", 0)].as_string(),
        Study.spec[("objective", "metric")].as_string(),
    )
    dataset_expr = Study.spec[("objective", "dataset")].as_string()

    def best_trial_id(maximize: bool) -> ColumnElement[int]:
        t = aliased(Trial)
        return (
            ranked_trials(
                Study.id, maximize=maximize, accepted_only=accepted_only, columns=(t.id,), trial=t
            )
            .limit(1)
            .correlate(Study)
            .scalar_subquery()
        )

    filters: list[ColumnElement[bool]] = [Study.team_id == team_id, Study.spec.is_not(None)]
    if dataset is not None:
        filters.append(dataset_expr == dataset)
    if metric is not None:
        filters.append(metric_expr == metric)
    if standard is not None:
        versions = (
            select(StandardVersion.id)
            .join(Standard, Standard.id == StandardVersion.standard_id)
            .where(Standard.team_id == team_id, Standard.name == standard.name)
        )
        if standard.version is not None:
            versions = versions.where(StandardVersion.version == standard.version)
        filters.append(Study.standard_version_id.in_(versions))

    best = (
        select(
            Study.id.label("study_id"),
            case(
                (direction == "maximize", best_trial_id(True)), else_=best_trial_id(False)
            ).label("trial_id"),
            metric_expr.label("metric"),
            direction.label("direction"),
            dataset_expr.label("dataset"),
        )
        .where(*filters)
        .subquery()
    )
    score = case((best.c.direction == "maximize", -Trial.value), else_=Trial.value)
    stmt = (
        select(Study, Trial, best.c.metric, best.c.direction, best.c.dataset, score)
        .join(best, best.c.study_id == Study.id)
        .join(Trial, Trial.id == best.c.trial_id)
        .where(best.c.metric.is_not(None))
    )
    if after is not None:
        stmt = stmt.where(
            or_(
                best.c.metric > after.metric,
                and_(
                    best.c.metric == after.metric,
                    or_(
                        score > after.score,
                        and_(score == after.score, Study.id > after.study_id),
                    ),
                ),
            )
        )
    rows = session.execute(stmt.order_by(best.c.metric, score, Study.id).limit(limit)).all()

    out: list[StudyBest] = []
    prev_metric, rank = (after.metric, after.rank) if after is not None else (None, 0)
    for study, trial, metric_name, direction_name, dataset_name, row_score in rows:
        rank = rank + 1 if metric_name == prev_metric else 1
        prev_metric = metric_name
        out.append(
            StudyBest(
                rank=rank,
                study=study,
                trial=trial,
                metric=str(metric_name),
                direction=str(direction_name or "minimize"),
                dataset=dataset_name,
                score=float(row_score),
            )
        )
    return out
