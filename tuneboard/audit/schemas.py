"""What the API returns for an audit log entry."""

from __future__ import annotations

from tuneboard.db.models import AuditEntry
from tuneboard.schemas import JsonObject, UtcDatetime, View


class AuditEntryOut(View):
    id: int
    actor: str
    action: str
    object_type: str
    object_id: str
    details: JsonObject
    created_at: UtcDatetime

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls(id=entry.id, actor=entry.actor, action=entry.action,
                   object_type=entry.object_type, object_id=entry.object_id,
                   details=entry.details or {}, created_at=entry.created_at)
