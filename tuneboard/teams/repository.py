from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuneboard.db.models import ApiKey, Team


def get_team_by_name(session: Session, name: str) -> Team | None:
    return session.scalar(select(Team).where(Team.name == name))


def get_key_by_hash(session: Session, key_hash: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))


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
