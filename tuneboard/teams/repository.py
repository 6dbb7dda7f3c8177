from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from tuneboard.db.models import API_KEYS, TEAMS, ApiKey, Study, Team, Trial
from tuneboard.spec.states import TrialState


def get_team_by_name(session: Session, name: str) -> Team | None:
    return session.scalar(select(Team).where(Team.name == name))


def team_names(session: Session) -> list[str]:
    return list(session.scalars(select(Team.name).order_by(Team.name)))


def lock_team(session: Session, team_id: int) -> Team | None:
    """The team's row, locked until the transaction ends (SQLite: its writer lock suffices)."""
    return session.scalar(select(Team).where(Team.id == team_id).with_for_update())


# Every request authenticates with it: built once, on the tables (no ORM compilation per call).
_KEY_PRINCIPAL = (
    select(API_KEYS.c.team_id, TEAMS.c.name, API_KEYS.c.id, API_KEYS.c.role, API_KEYS.c.revoked_at)
    .join(TEAMS, TEAMS.c.id == API_KEYS.c.team_id)
    .where(API_KEYS.c.key_hash == bindparam("key_hash"))
)


def key_principal(
    session: Session, key_hash: str
) -> tuple[int, str, int, str, datetime | None] | None:
    """(team id, team name, key id, role, revoked at) of the key with that hash: what every
    request authenticates with, as one plain row."""
    row = session.execute(_KEY_PRINCIPAL, {"key_hash": key_hash}).one_or_none()
    return None if row is None else (row[0], row[1], row[2], row[3], row[4])


def get_key(session: Session, team_id: int, key_id: int) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.team_id == team_id, ApiKey.id == key_id))


def list_keys(session: Session, team_id: int) -> list[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.team_id == team_id).order_by(ApiKey.id)
    return list(session.scalars(stmt))


def list_keys_page(
    session: Session, team_id: int, *, limit: int, after_id: int | None = None
) -> list[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.team_id == team_id)
    if after_id is not None:
        stmt = stmt.where(ApiKey.id > after_id)
    return list(session.scalars(stmt.order_by(ApiKey.id).limit(limit)))


def count_active_admin_keys(session: Session, team_id: int) -> int:
    stmt = select(func.count()).where(
        ApiKey.team_id == team_id, ApiKey.role == "admin", ApiKey.revoked_at.is_(None)
    )
    return session.scalar(stmt) or 0


def count_running_trials(session: Session, team_id: int) -> int:
    stmt = (
        select(func.count())
        .select_from(Trial)
        .join(Study, Study.id == Trial.study_id)
        .where(Study.team_id == team_id, Trial.state == TrialState.RUNNING)
    )
    return session.scalar(stmt) or 0


def studies_created_since(
    session: Session, team_id: int, since: datetime
) -> tuple[int, datetime | None]:
    """How many studies the team created after ``since``, and when the first of them was."""
    stmt = select(func.count(), func.min(Study.created_at)).where(
        Study.team_id == team_id, Study.created_at > since
    )
    count, first = session.execute(stmt).one()
    return int(count or 0), first
