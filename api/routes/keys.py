"""API keys of the caller's team (admin): create (the key is shown once), list, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from api.deps import API_PREFIX, MAX_ID, Admin, SessionDep
from api.openapi import ERRORS
from api.pagination import Cursor, Limit, decode_cursor, page
from tuneboard.studies.views import KeyCreated, KeyCreateRequest, KeyOut, Page
from tuneboard.teams import revoke_key
from tuneboard.teams import service as teams

router = APIRouter(prefix=f"{API_PREFIX}/keys", tags=["keys"], responses=ERRORS)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an API key")
def create_key(session: SessionDep, principal: Admin, body: KeyCreateRequest) -> KeyCreated:
    key, raw = teams.create_key_for_team_name(
        session, principal.team_name, body.role, actor=principal.actor, name=body.name
    )
    return KeyCreated(**KeyOut.of(key).model_dump(), api_key=raw)


@router.get("", summary="The team's API keys, oldest first")
def list_keys(
    session: SessionDep, principal: Admin, limit: Limit, cursor: Cursor = None
) -> Page[KeyOut]:
    (after,) = decode_cursor(cursor, int) if cursor else (None,)
    rows = teams.list_keys(session, principal, limit=limit + 1, after_id=after)
    items, next_cursor = page(rows, limit, lambda k: (k.id,))
    return Page[KeyOut](items=[KeyOut.of(k) for k in items], next_cursor=next_cursor)


@router.post("/{key_id}/revoke", summary="Revoke an API key (at once, for good)")
def revoke(
    session: SessionDep,
    principal: Admin,
    key_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The key's id.")],
) -> KeyOut:
    return KeyOut.of(revoke_key(session, principal.team_id, key_id, actor=principal.actor))
