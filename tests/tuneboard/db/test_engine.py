"""Database errors and statement logs never show a statement's parameters (key hashes, ...)."""

from __future__ import annotations

import logging

import pytest

from api.deps import unit_of_work
from tuneboard.db import get_session_factory, session_scope
from tuneboard.db.models import ApiKey
from tuneboard.errors import Conflict
from tuneboard.teams import repository
from tuneboard.teams import service as teams


def test_logs_never_show_a_key_or_its_hash(db_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with session_scope(db_url) as session:
        team, raw = teams.create_team(session, "alpha")
        (key,) = repository.list_keys(session, team.id)
        team_id, prefix, key_hash = team.id, key.prefix, key.key_hash
    caplog.set_level(logging.WARNING, logger="api.deps")
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # statements, as with echo=True
    # A second key with the same hash: the unique index refuses it, and the error is logged.
    with pytest.raises(Conflict), unit_of_work(get_session_factory(db_url)) as session:
        session.add(ApiKey(team_id=team_id, role="admin", name="dup", prefix=prefix,
                           key_hash=key_hash))
        session.flush()
    assert "database error: IntegrityError" in caplog.text
    assert "INSERT INTO api_keys" in caplog.text
    assert "parameters hidden" in caplog.text
    for secret in (raw, prefix, key_hash):
        assert secret not in caplog.text
