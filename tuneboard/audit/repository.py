"""Every query on the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuneboard.db.models import AuditEntry


def record(
    session: Session,
    *,
    team_id: int | None,
    actor: str,
    action: str,
    object_type: str,
    object_id: object,
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditEntry(
            team_id=team_id,
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            details=details or {},
        )
    )


def list_entries(
    session: Session, team_id: int, *, limit: int, before_id: int | None = None
) -> list[AuditEntry]:
    """The team's audit log, newest first; ``before_id`` is the cursor."""
    stmt = select(AuditEntry).where(AuditEntry.team_id == team_id)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    return list(session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit)))
