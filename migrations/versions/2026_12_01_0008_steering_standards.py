"""stopping, lineage and webhooks

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 09:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from tuneboard.db.base import in_check
from tuneboard.db.migrate import replace_check_constraint

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    _upgrade_webhooks()
    _upgrade_stopping_and_lineage()
    _upgrade_warm_start_origin()


def downgrade() -> None:
    _downgrade_warm_start_origin()
    _downgrade_stopping_and_lineage()
    _downgrade_webhooks()


# --- webhooks: registered receivers and their delivery outbox ---------------------------------


def _upgrade_webhooks() -> None:
    op.create_table(
        "webhooks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("events", JSON_DOC, nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_webhooks_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_webhooks_team_id_id"), "webhooks", ["team_id", "id"], unique=False)
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=50), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("payload", JSON_DOC, nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "state IN ('pending', 'delivered', 'failed')",
            name=op.f("ck_webhook_deliveries_state"),
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_webhook_deliveries_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "webhook_id", "event_id", name=op.f("uq_webhook_deliveries_webhook_id_event_id")
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_webhook_deliveries_state_next_attempt_at"),
        "webhook_deliveries",
        ["state", "next_attempt_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_webhook_deliveries_webhook_id_id"),
        "webhook_deliveries",
        ["webhook_id", "id"],
        unique=False,
    )


def _downgrade_webhooks() -> None:
    op.drop_index(op.f("ix_webhook_deliveries_webhook_id_id"), table_name="webhook_deliveries")
    op.drop_index(
        op.f("ix_webhook_deliveries_state_next_attempt_at"), table_name="webhook_deliveries"
    )
    op.drop_table("webhook_deliveries")
    op.drop_index(op.f("ix_webhooks_team_id_id"), table_name="webhooks")
    op.drop_table("webhooks")


# --- stopping rules and lineage: why a study stopped, what it was cloned from -----------------
# Plain columns, added in place: a foreign key would make SQLite rebuild ``studies``, and
# dropping the old table cascades to every trial (foreign keys are on).


def _upgrade_stopping_and_lineage() -> None:
    op.add_column("studies", sa.Column("stop_reason", sa.Text(), nullable=True))
    op.add_column("studies", sa.Column("parent_id", sa.Integer(), nullable=True))
    op.add_column("studies", sa.Column("stopping_since", sa.Integer(), nullable=True))


def _downgrade_stopping_and_lineage() -> None:
    op.drop_column("studies", "stopping_since")
    op.drop_column("studies", "parent_id")
    op.drop_column("studies", "stop_reason")


# --- warm start: trials of origin ``warm_start`` --------------------------------------------
# The check on ``trials.origin`` admits the new origin.

ORIGINS_BEFORE = ("sampler", "manual", "retry", "stability", "optuna")
ORIGINS_AFTER = ("sampler", "manual", "retry", "stability", "warm_start", "optuna")
ORIGIN_CHECK = "ck_trials_origin"


def _replace_origin_check(old: Sequence[str], new: Sequence[str]) -> None:
    replace_check_constraint(
        "trials", ORIGIN_CHECK, in_check("origin", old), in_check("origin", new)
    )


def _upgrade_warm_start_origin() -> None:
    _replace_origin_check(ORIGINS_BEFORE, ORIGINS_AFTER)


def _downgrade_warm_start_origin() -> None:
    # A warm-start trial is a sampler trial of the budget with its parameters given.
    op.execute("UPDATE trials SET origin = 'sampler' WHERE origin = 'warm_start'")
    _replace_origin_check(ORIGINS_AFTER, ORIGINS_BEFORE)
