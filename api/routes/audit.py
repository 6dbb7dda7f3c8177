"""The team's audit log (admin): every change to standards, studies and keys, newest first."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import API_PREFIX, Admin, SessionDep
from api.openapi import ERRORS
from api.pagination import CursorKey, Limit, page
from tuneboard import audit
from tuneboard.audit import AuditEntryOut
from tuneboard.schemas import Page

router = APIRouter(prefix=API_PREFIX, tags=["audit"], responses=ERRORS)


@router.get("/audit", summary="The audit log, newest first")
def audit_log(
    session: SessionDep, principal: Admin, limit: Limit, before: CursorKey
) -> Page[AuditEntryOut]:
    rows = audit.list_entries(session, principal.team_id, limit=limit + 1, before_id=before)
    items, next_cursor = page(rows, limit, lambda e: (e.id,))
    return Page[AuditEntryOut](items=[AuditEntryOut.of(e) for e in items], next_cursor=next_cursor)
