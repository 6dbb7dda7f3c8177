"""Every query on standards and their versions. Each read is scoped to a team."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, event, func, inspect, select
from sqlalchemy.orm import Mapper, Session, aliased

from tuneboard.db.models import Standard, StandardVersion, Study, Trial
from tuneboard.db.queries import ranked_trials


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


def get_study(session: Session, team_id: int, study_id: int) -> Study | None:
    return session.scalar(select(Study).where(Study.team_id == team_id, Study.id == study_id))


def best_accepted_trial(session: Session, study: Study) -> Trial | None:
    return session.scalar(
        ranked_trials(study.id, maximize=study.maximizes, accepted_only=True).limit(1)
    )
