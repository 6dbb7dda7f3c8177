"""hardening: cancelling study state

A cancelled study with trials still running is ``cancelling`` until the last of them ends: the
check constraint on ``studies.state`` admits the new state.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 09:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from tuneboard.db.base import in_check
from tuneboard.db.migrate import replace_check_constraint

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The study states as they were before and after this revision.
BEFORE = ("queued", "running", "completed", "cancelled", "failed")
AFTER = ("queued", "running", "cancelling", "completed", "cancelled", "failed")
CONSTRAINT = "ck_studies_state"


def _replace_state_check(old: Sequence[str], new: Sequence[str]) -> None:
    replace_check_constraint("studies", CONSTRAINT, in_check("state", old), in_check("state", new))


def upgrade() -> None:
    _replace_state_check(BEFORE, AFTER)


def downgrade() -> None:
    op.execute("UPDATE studies SET state = 'cancelled' WHERE state = 'cancelling'")
    _replace_state_check(AFTER, BEFORE)
