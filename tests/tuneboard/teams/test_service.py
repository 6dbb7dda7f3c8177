"""Key revocation rules in the service, where the CLI meets them too."""

from __future__ import annotations

import pytest

from tuneboard.db import session_scope
from tuneboard.db.models import Team
from tuneboard.errors import Conflict
from tuneboard.teams import repository
from tuneboard.teams import service as teams


def test_the_last_admin_key_cannot_be_revoked(db_url: str) -> None:
    with session_scope(db_url) as session:
        team, _ = teams.create_team(session, "alpha")
        (admin,) = repository.list_keys(session, team.id)
        member, _ = teams.create_key(session, team, "member", actor="test")
        team_id, admin_id, member_id = team.id, admin.id, member.id
    with session_scope(db_url) as session, pytest.raises(Conflict) as refused:
        teams.revoke_key(session, team_id, admin_id, actor="cli")
    assert refused.value.details == {"key_id": admin_id, "reason": "last_admin"}

    with session_scope(db_url) as session:
        team = session.get_one(Team, team_id)
        second, _ = teams.create_key(session, team, "admin", actor="test")
        second_id = second.id
        assert teams.revoke_key(session, team_id, member_id, actor="cli").revoked_at is not None
    with session_scope(db_url) as session:
        assert teams.revoke_key(session, team_id, admin_id, actor="cli").revoked_at is not None
    with session_scope(db_url) as session, pytest.raises(Conflict):
        teams.revoke_key(session, team_id, second_id, actor="cli")
