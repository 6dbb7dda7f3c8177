"""external trials: leases

A trial of an external study (run by a client over HTTP) holds a lease; the reaper fails it
once the lease has passed with no report or heartbeat.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 09:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Added and dropped in place: batch mode would make SQLite rebuild ``trials``, and dropping
    # the old table cascades to every row that references a trial (foreign keys are on).
    op.add_column("trials", sa.Column("lease_expires_at", sa.DateTime(), nullable=True))
    op.create_index(
        op.f("ix_trials_state_lease_expires_at"), "trials", ["state", "lease_expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_trials_state_lease_expires_at"), table_name="trials")
    op.drop_column("trials", "lease_expires_at")
