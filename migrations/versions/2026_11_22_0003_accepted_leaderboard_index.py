"""partial index for the accepted-only leaderboard

Revision ID: 0003
Revises: 3847dc96d69a
Create Date: 2026-11-22 15:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "3847dc96d69a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

def upgrade() -> None:
    op.create_index(
        "ix_trials_accepted_leaderboard", "trials", ["study_id", "value"],
        postgresql_where=sa.text("state = 'complete' AND accepted"),
        sqlite_where=sa.text("state = 'complete' AND accepted = 1"),
    )


def downgrade() -> None:
    op.drop_index("ix_trials_accepted_leaderboard", table_name="trials")
