from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from tests.db_support import BACKENDS, create_database, drop_database
from tuneboard.db import models  # noqa: F401
from tuneboard.db.base import Base
from tuneboard.db.engine import get_engine
from tuneboard.db.migrate import MIGRATIONS_DIR, downgrade, upgrade


@pytest.mark.parametrize("backend", BACKENDS)
def test_models_and_migrations_agree(backend: str, tmp_path: Path) -> None:
    url = create_database(backend, tmp_path)
    try:
        with get_engine(url).connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        assert diff == []
    finally:
        drop_database(url)


@pytest.mark.parametrize("backend", BACKENDS)
def test_downgrade_to_base_and_upgrade_again(backend: str, tmp_path: Path) -> None:
    url = create_database(backend, tmp_path)
    try:
        downgrade(url, "base")
        assert set(sa.inspect(get_engine(url)).get_table_names()) <= {"alembic_version"}
        upgrade(url)
        tables = set(sa.inspect(get_engine(url)).get_table_names())
        assert {t.name for t in Base.metadata.sorted_tables} <= tables
    finally:
        drop_database(url)


def test_revision_files_are_date_prefixed() -> None:
    names = [p.name for p in (MIGRATIONS_DIR / "versions").glob("*.py")]
    assert names
    for name in names:
        year, month, day = name.split("_")[:3]
        assert len(year) == 4 and len(month) == 2 and len(day) == 2, name
