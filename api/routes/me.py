"""Who the caller is: the key's team and role (the UI and CLI check a key with it)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import API_PREFIX, CurrentPrincipal
from api.openapi import ERRORS
from tuneboard.teams.schemas import WhoAmI

router = APIRouter(prefix=API_PREFIX, tags=["keys"], responses=ERRORS)


@router.get("/whoami", summary="The calling key's team and role")
def whoami(principal: CurrentPrincipal) -> WhoAmI:
    return WhoAmI.of(principal)
