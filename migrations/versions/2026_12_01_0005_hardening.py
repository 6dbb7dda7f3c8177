"""hardening: cancelling study state

A cancelled study with trials still running is ``cancelling`` until the last of them ends: the
check constraint on ``studies.state`` admits the new state.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The study states as they were before and after this revision.
BEFORE = ("queued", "running", "completed", "cancelled", "failed")
AFTER = ("queued", "running", "cancelling", "completed", "cancelled", "failed")
CONSTRAINT = "ck_studies_state"


def _state_check(states: Sequence[str]) -> str:
    return "state IN (" + ", ".join(f"'{s}'" for s in states) + ")"


def _replace_state_check(old: Sequence[str], new: Sequence[str]) -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(op.f(CONSTRAINT), "studies", type_="check")
        op.create_check_constraint(op.f(CONSTRAINT), "studies", _state_check(new))
        return
    # SQLite cannot alter a constraint, and rebuilding the table (batch mode) would drop it
    # first: with foreign keys on, that deletes every trial (ON DELETE CASCADE). A check that
    # every stored row passes is changed in the schema text instead, which SQLite documents for
    # constraint changes that leave the stored rows as they are ("ALTER TABLE", section
    # "Making Other Kinds Of Table Schema Changes").
    bind = op.get_bind()
    sql = bind.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'studies'")
    ).scalar_one()
    if sql.count(_state_check(old)) != 1:
        raise RuntimeError(f"studies: {CONSTRAINT} is not {_state_check(old)!r}")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.execute(
        sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = 'studies'"),
        {"sql": sql.replace(_state_check(old), _state_check(new))},
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade() -> None:
    _replace_state_check(BEFORE, AFTER)


def downgrade() -> None:
    op.execute("UPDATE studies SET state = 'cancelled' WHERE state = 'cancelling'")
    _replace_state_check(AFTER, BEFORE)
