"""optuna data as plain json

Optuna's own data (study and trial attributes, params, distributions, values, intermediate
values) moves from JSONB to JSON on PostgreSQL so it round-trips exactly, as in Optuna's
RDBStorage: JSONB reorders object keys (params keep their suggestion order) and prints large
floats such as 1e308 as integers. SQLite stores JSON as text already: nothing to do there.

Revision ID: 3847dc96d69a
Revises: 0001
Create Date: 2026-11-22 15:10:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '3847dc96d69a'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {
    'studies': ('user_attrs', 'system_attrs'),
    'trials': (
        'values', 'params', 'distributions', 'intermediate_values', 'user_attrs', 'system_attrs',
    ),
}


def _retype(old: sa.types.TypeEngine, new: sa.types.TypeEngine, cast: str) -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, columns in COLUMNS.items():
        for column in columns:
            op.alter_column(table, column, existing_type=old, type_=new,
                            postgresql_using=f'"{column}"::{cast}')


def upgrade() -> None:
    _retype(postgresql.JSONB(astext_type=sa.Text()), sa.JSON(), 'json')


def downgrade() -> None:
    _retype(sa.JSON(), postgresql.JSONB(astext_type=sa.Text()), 'jsonb')
