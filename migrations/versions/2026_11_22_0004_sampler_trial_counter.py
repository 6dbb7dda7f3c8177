"""sampler-trial counter on studies, index for retries

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 16:15:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("studies") as batch:
        batch.add_column(
            sa.Column("sampler_trials", sa.Integer(), server_default="0", nullable=False)
        )
    op.execute(
        "UPDATE studies SET sampler_trials = (SELECT count(*) FROM trials "
        "WHERE trials.study_id = studies.id AND trials.origin = 'sampler')"
    )
    op.create_index(
        "ix_trials_retries", "trials", ["study_id", "retry_of"],
        postgresql_where=sa.text("retry_of IS NOT NULL"),
        sqlite_where=sa.text("retry_of IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_trials_retries", table_name="trials")
    with op.batch_alter_table("studies") as batch:
        batch.drop_column("sampler_trials")
