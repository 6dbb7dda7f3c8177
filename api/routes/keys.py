"""API keys of the caller's team (admin): create (the key is shown once), list, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from api.deps import API_PREFIX, MAX_ID, Admin, SessionDep
from api.openapi import ERRORS
from api.pagination import CursorKey, Limit, page
from tuneboard.schemas import Page
from tuneboard.teams import service as teams
from tuneboard.teams.schemas import KeyCreated, KeyCreateRequest, KeyOut

router = APIRouter(prefix=f"{API_PREFIX}/keys", tags=["keys"], responses=ERRORS)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an API key")
def create_key(session: SessionDep, principal: Admin, body: KeyCreateRequest) -> KeyCreated:
    key, raw = teams.create_key_for_team_name(
        session, principal.team_name, body.role, actor=principal.actor, name=body.name
    )
    return KeyCreated.of_new(key, raw)


@router.get("", summary="The team's API keys, oldest first")
def list_keys(
    session: SessionDep, principal: Admin, limit: Limit, after: CursorKey
) -> Page[KeyOut]:
    rows = teams.list_keys(session, principal, limit=limit + 1, after_id=after)
    items, next_cursor = page(rows, limit, lambda k: (k.id,))
    return Page[KeyOut](items=[KeyOut.of(k) for k in items], next_cursor=next_cursor)


@router.post(
    "/{key_id}/revoke",
    summary="Revoke an API key (at once, for good)",
    description="**409** for the key making the request and for the team's last admin key.",
)
def revoke(
    session: SessionDep,
    principal: Admin,
    key_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The key's id.")],
) -> KeyOut:
    key = teams.revoke_key(
        session, principal.team_id, key_id, actor=principal.actor, by_key_id=principal.key_id
    )
    return KeyOut.of(key)
