"""What the API takes and returns for API keys and for the calling key (``whoami``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tuneboard.db.models import ApiKey
from tuneboard.schemas import UtcDatetime, View
from tuneboard.teams.service import Principal


class KeyCreateRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"role": "member", "name": "ci"}]}
    )

    role: Literal["viewer", "member", "maintainer", "admin"]
    name: str = Field("", max_length=100)


class KeyOut(View):
    id: int
    name: str
    role: str
    prefix: str = Field(description="The first characters of the key, to tell keys apart.")
    created_at: UtcDatetime
    revoked_at: UtcDatetime | None = None

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        return cls(id=key.id, name=key.name, role=key.role, prefix=key.prefix,
                   created_at=key.created_at, revoked_at=key.revoked_at)


class KeyCreated(KeyOut):
    api_key: str = Field(description="The key itself; shown this once, never again.")

    @classmethod
    def of_new(cls, key: ApiKey, raw: str) -> KeyCreated:
        return cls(**KeyOut.of(key).model_dump(), api_key=raw)


class WhoAmI(View):
    """Who the key belongs to."""

    team_id: int
    team: str
    key_id: int
    role: str

    @classmethod
    def of(cls, principal: Principal) -> WhoAmI:
        return cls(team_id=principal.team_id, team=principal.team_name,
                   key_id=principal.key_id, role=principal.role)
