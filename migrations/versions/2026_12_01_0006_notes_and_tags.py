"""notes on studies and trials

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As ``tuneboard.db.models.NOTE_MAX_LENGTH`` was when this revision was written.
NOTE_MAX_LENGTH = 10_000


def upgrade() -> None:
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("trial_id", sa.Integer(), nullable=True),
        sa.Column("author", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            f"length(body) BETWEEN 1 AND {NOTE_MAX_LENGTH}", name=op.f("ck_notes_body_length")
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_notes_team_id_teams"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["study_id"], ["studies.id"], name=op.f("fk_notes_study_id_studies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["trial_id"], ["trials.id"], name=op.f("fk_notes_trial_id_trials"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notes")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_notes_study_id_id"), "notes", ["study_id", "id"], unique=False)
    op.create_index(op.f("ix_notes_trial_id_id"), "notes", ["trial_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_notes_trial_id_id"), table_name="notes")
    op.drop_index(op.f("ix_notes_study_id_id"), table_name="notes")
    op.drop_table("notes")
