"""Every query on standards and their versions. Each read is scoped to a team."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import Select, event, func, inspect, select
from sqlalchemy.orm import Mapper, Session, aliased

from tuneboard.db.models import Standard, StandardVersion, Study, Trial
from tuneboard.db.queries import ranked_trials

# Rows per fetch of a streamed read.
STREAM_ROWS = 1000


class ImmutableVersionError(RuntimeError):
    """A programming error: something tried to rewrite a published version."""


@event.listens_for(StandardVersion, "before_update")
def _only_status_changes(_mapper: Mapper[Any], _connection: Any, target: StandardVersion) -> None:
    state = inspect(target)
    changed = [a.key for a in state.attrs if a.key != "status" and a.history.has_changes()]
    if changed:
        raise ImmutableVersionError(
            f"standard version {target.id} is immutable; tried to change {', '.join(changed)}"
        )


def _lockable(session: Session, stmt: Select[Any]) -> Select[Any]:
    # SQLite transactions already hold the write lock (BEGIN IMMEDIATE); others need a row lock.
    return stmt if session.get_bind().dialect.name == "sqlite" else stmt.with_for_update()


def get_standard(
    session: Session, team_id: int, name: str, *, lock: bool = False
) -> Standard | None:
    stmt = select(Standard).where(Standard.team_id == team_id, Standard.name == name)
    return session.scalar(_lockable(session, stmt) if lock else stmt)


def add_standard(session: Session, team_id: int, name: str) -> Standard:
    standard = Standard(team_id=team_id, name=name)
    session.add(standard)
    session.flush()
    return standard


def add_version(
    session: Session,
    standard: Standard,
    *,
    version: int,
    document: dict[str, Any],
    author: str,
    changelog: str,
) -> StandardVersion:
    row = StandardVersion(
        standard=standard,
        version=version,
        document=document,
        status="active",
        author=author,
        changelog=changelog,
    )
    session.add(row)
    session.flush()
    return row


def max_version(session: Session, standard_id: int) -> int:
    return session.scalar(
        select(func.coalesce(func.max(StandardVersion.version), 0)).where(
            StandardVersion.standard_id == standard_id
        )
    ) or 0


def get_version(session: Session, standard_id: int, version: int) -> StandardVersion | None:
    return session.scalar(
        select(StandardVersion).where(
            StandardVersion.standard_id == standard_id, StandardVersion.version == version
        )
    )


def latest_version(
    session: Session, standard_id: int, *, active_only: bool = False
) -> StandardVersion | None:
    stmt = select(StandardVersion).where(StandardVersion.standard_id == standard_id)
    if active_only:
        stmt = stmt.where(StandardVersion.status == "active")
    return session.scalar(stmt.order_by(StandardVersion.version.desc()).limit(1))


def list_latest_versions(
    session: Session, team_id: int, *, limit: int, after_standard_id: int | None = None
) -> list[StandardVersion]:
    """The newest version of each of the team's standards, by standard id."""
    newer = aliased(StandardVersion)
    newest = (
        select(func.max(newer.version))
        .where(newer.standard_id == StandardVersion.standard_id)
        .correlate(StandardVersion)
        .scalar_subquery()
    )
    stmt = (
        select(StandardVersion)
        .join(Standard, Standard.id == StandardVersion.standard_id)
        .where(Standard.team_id == team_id, StandardVersion.version == newest)
    )
    if after_standard_id is not None:
        stmt = stmt.where(Standard.id > after_standard_id)
    return list(session.scalars(stmt.order_by(Standard.id).limit(limit)))


def list_versions(
    session: Session, standard_id: int, *, limit: int, after_version: int | None = None
) -> list[StandardVersion]:
    stmt = select(StandardVersion).where(StandardVersion.standard_id == standard_id)
    if after_version is not None:
        stmt = stmt.where(StandardVersion.version > after_version)
    return list(session.scalars(stmt.order_by(StandardVersion.version).limit(limit)))


def all_versions(session: Session, standard_id: int) -> list[StandardVersion]:
    """Every version of the standard, oldest first."""
    return list(
        session.scalars(
            select(StandardVersion)
            .where(StandardVersion.standard_id == standard_id)
            .order_by(StandardVersion.version)
        )
    )


def get_study(session: Session, team_id: int, study_id: int) -> Study | None:
    return session.scalar(select(Study).where(Study.team_id == team_id, Study.id == study_id))


def studies_under_versions(
    session: Session, team_id: int, version_ids: Collection[int]
) -> list[Study]:
    """The team's studies pinned to any of ``version_ids``, newest first."""
    return list(
        session.scalars(
            select(Study)
            .where(Study.team_id == team_id, Study.standard_version_id.in_(version_ids))
            .order_by(Study.id.desc())
        )
    )


def top_accepted_trials(session: Session, study: Study, limit: int) -> list[Trial]:
    """The study's best ``limit`` accepted trials, best first (as ``ranked_trials`` ranks)."""
    ranked = ranked_trials(study.id, maximize=study.maximizes, accepted_only=True)
    return list(session.scalars(ranked.limit(limit)))


def best_accepted_trial(session: Session, study: Study) -> Trial | None:
    return next(iter(top_accepted_trials(session, study, 1)), None)


def best_accepted_trials(session: Session, studies: Iterable[Study]) -> dict[int, Trial]:
    """Each study's best accepted trial, by study id, in two statements per direction whatever
    the number of studies; a study with no accepted trial is left out."""
    studies = list(studies)
    best = aliased(Trial)
    best_ids: dict[int, int] = {}
    for maximize in (True, False):
        ids = [s.id for s in studies if s.maximizes is maximize]
        if not ids:
            continue
        best_id = (
            ranked_trials(Study.id, maximize=maximize, accepted_only=True, columns=(best.id,),
                          trial=best)
            .limit(1)
            .correlate(Study)
            .scalar_subquery()
        )
        rows = session.execute(select(Study.id, best_id).where(Study.id.in_(ids)))
        best_ids.update({sid: tid for sid, tid in rows if tid is not None})
    if not best_ids:
        return {}
    return {t.study_id: t for t in session.scalars(
        select(Trial).where(Trial.id.in_(best_ids.values()))
    )}


def judged_trial_counts(
    session: Session, study_ids: Collection[int]
) -> list[tuple[int, bool | None, int]]:
    """Per study and ``accepted`` value (None: the verdict is pending), how many of the
    studies' trials have a verdict."""
    if not study_ids:
        return []
    rows = session.execute(
        select(Trial.study_id, Trial.accepted, func.count())
        .where(Trial.study_id.in_(study_ids), Trial.verdict.is_not(None))
        .group_by(Trial.study_id, Trial.accepted)
    )
    return [(study_id, accepted, n) for study_id, accepted, n in rows]


def stream_verdicts(
    session: Session, team_id: int, version_ids: Sequence[int]
) -> Iterable[tuple[int, dict[str, Any] | None]]:
    """(version id, verdict) of every judged trial of the team's studies under
    ``version_ids``, fetched ``STREAM_ROWS`` at a time: memory stays flat however many trials
    there are. Iterate it before the session runs another statement."""
    if not version_ids:
        return []
    rows = session.execute(
        select(Study.standard_version_id, Trial.verdict)
        .join(Study, Study.id == Trial.study_id)
        .where(
            Study.team_id == team_id,
            Study.standard_version_id.in_(version_ids),
            Trial.verdict.is_not(None),
        )
        .execution_options(yield_per=STREAM_ROWS)
    )
    return ((version_id, verdict) for version_id, verdict in rows)
