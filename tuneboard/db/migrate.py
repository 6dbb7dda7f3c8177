"""Alembic, driven from code: ``tuneboard db upgrade`` and the tests use these; and the schema
operations that more than one migration performs."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command, op
from alembic.config import Config

from tuneboard.db.engine import normalize_url

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option(
        "file_template", "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s"
    )
    cfg.attributes["database_url"] = normalize_url(url)
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def replace_check_constraint(table: str, name: str, old: str, new: str) -> None:
    """Inside a migration: change the check ``name`` on ``table`` from the SQL ``old`` to ``new``.

    Every stored row must already pass ``new``. SQLite cannot alter a constraint, and rebuilding
    the table (batch mode) drops the old table first: with foreign keys on, that deletes every
    row that references it (ON DELETE CASCADE), and the new table's AUTOINCREMENT counter
    restarts at the highest id left, so the ids of deleted rows would be handed out again. The
    check is changed in the stored schema text instead, as SQLite documents for constraint
    changes that leave the stored rows as they are ("ALTER TABLE", section "Making Other Kinds
    Of Table Schema Changes"); the table, its rows and its counter stay as they are.
    """
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint(op.f(name), table, type_="check")
        op.create_check_constraint(op.f(name), table, new)
        return
    select = sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :table")
    sql = bind.execute(select, {"table": table}).scalar_one()
    if sql.count(old) != 1:
        raise RuntimeError(f"{table}: {name} is not {old!r}")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.execute(
        sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = :table"),
        {"sql": sql.replace(old, new), "table": table},
    )
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")
