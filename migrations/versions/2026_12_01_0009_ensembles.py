"""ensembles of a study's best trials

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 10:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "ensembles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("members", JSON_DOC, nullable=False),
        sa.Column("metric", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("best_single_value", sa.Float(), nullable=True),
        sa.Column("gain", sa.Float(), nullable=True),
        sa.Column("member_values", JSON_DOC, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("verdict", JSON_DOC, nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'running', 'complete', 'failed')",
            name=op.f("ck_ensembles_state"),
        ),
        sa.CheckConstraint("k >= 2", name=op.f("ck_ensembles_k")),
        sa.ForeignKeyConstraint(
            ["study_id"], ["studies.id"], name=op.f("fk_ensembles_study_id_studies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ensembles")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_ensembles_study_id_id"), "ensembles", ["study_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_ensembles_study_id_id"), table_name="ensembles")
    op.drop_table("ensembles")
