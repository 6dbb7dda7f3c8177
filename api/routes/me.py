"""Who the caller is: the key's team and role (the UI and CLI check a key with it)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import API_PREFIX, CurrentPrincipal
from api.openapi import ERRORS
from tuneboard.studies.views import WhoAmI

router = APIRouter(prefix=API_PREFIX, tags=["keys"], responses=ERRORS)


@router.get("/whoami", summary="The calling key's team and role")
def whoami(principal: CurrentPrincipal) -> WhoAmI:
    return WhoAmI(
        team_id=principal.team_id, team=principal.team_name, key_id=principal.key_id,
        role=principal.role,
    )
