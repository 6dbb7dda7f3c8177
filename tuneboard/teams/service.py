"""Teams and API keys. Keys are random tokens shown once; the store keeps their SHA-256."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from tuneboard import audit
from tuneboard.db.base import utcnow
from tuneboard.db.models import ROLES, ApiKey, Team
from tuneboard.errors import Conflict, InvalidInput, NotFound, Unauthorized
from tuneboard.teams import repository

KEY_PREFIX = "tb_"
TEAM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key of a team with a role."""

    team_id: int
    team_name: str
    key_id: int
    role: str

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"


def has_role(principal: Principal, required: str) -> bool:
    return ROLES.index(principal.role) >= ROLES.index(required)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def create_team(session: Session, name: str, *, actor: str = "cli") -> tuple[Team, str]:
    """A team and its first admin key (returned in clear, once)."""
    if not TEAM_NAME.match(name):
        raise InvalidInput.at("name", "team name must be 1-100 letters, digits, '_', '.' or '-'")
    if repository.get_team_by_name(session, name) is not None:
        raise Conflict(f"team {name!r} already exists")
    team = Team(name=name)
    session.add(team)
    session.flush()
    audit.record(session, team_id=team.id, actor=actor, action="team.create",
                 object_type="team", object_id=team.id, details={"name": name})
    _, raw = create_key(session, team, "admin", actor=actor, name="initial admin key")
    return team, raw


def create_key(
    session: Session, team: Team, role: str, *, actor: str, name: str = ""
) -> tuple[ApiKey, str]:
    if role not in ROLES:
        raise InvalidInput.at("role", f"must be one of {', '.join(ROLES)}")
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(team_id=team.id, role=role, name=name, prefix=raw[:10], key_hash=hash_key(raw))
    session.add(key)
    session.flush()
    audit.record(session, team_id=team.id, actor=actor, action="key.create",
                 object_type="api_key", object_id=key.id, details={"role": role, "name": name})
    return key, raw


def create_key_for_team_name(
    session: Session, team_name: str, role: str, *, actor: str = "cli", name: str = ""
) -> tuple[ApiKey, str]:
    team = repository.get_team_by_name(session, team_name)
    if team is None:
        raise NotFound(f"team {team_name!r} does not exist")
    return create_key(session, team, role, actor=actor, name=name)


def revoke_key(
    session: Session, team_id: int, key_id: int, *, actor: str, by_key_id: int | None = None
) -> ApiKey:
    """Revoke a key of the team (again: a no-op). 409 for the key making the request
    (``by_key_id``) and for the team's last admin key: either would lock the team out."""
    repository.lock_team(session, team_id)  # concurrent revokes count the admins one at a time
    key = repository.get_key(session, team_id, key_id)
    if key is None:
        raise NotFound(f"API key {key_id} not found")
    if key.revoked_at is None and key.id == by_key_id:
        raise Conflict(
            "a key cannot revoke itself; revoke it with another admin key",
            {"key_id": key.id, "reason": "self"},
        )
    last_admin = key.role == "admin" and repository.count_active_admin_keys(session, team_id) <= 1
    if key.revoked_at is None and last_admin:
        raise Conflict(
            "this is the team's last admin key; create another admin key first",
            {"key_id": key.id, "reason": "last_admin"},
        )
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(session, team_id=team_id, actor=actor, action="key.revoke",
                     object_type="api_key", object_id=key.id)
    return key


def authenticate(session: Session, raw_key: str) -> Principal:
    key = repository.key_principal(session, hash_key(raw_key))
    if key is None or key[4] is not None:
        raise Unauthorized("invalid or revoked API key")
    team_id, team_name, key_id, role, _ = key
    return Principal(team_id=team_id, team_name=team_name, key_id=key_id, role=role)


def list_keys(
    session: Session, principal: Principal, *, limit: int, after_id: int | None = None
) -> list[ApiKey]:
    """The caller's team's keys, oldest first; ``after_id`` is the cursor."""
    return repository.list_keys_page(session, principal.team_id, limit=limit, after_id=after_id)
