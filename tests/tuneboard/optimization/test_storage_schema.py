"""SqlStorage refuses a database without Tuneboard's schema or behind its migrations, and
creates nothing in it; the check runs once per database per process."""

from __future__ import annotations

import ast
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import sqlalchemy as sa

from tests.db_support import BACKENDS, create_database, drop_database
from tests.tuneboard.optimization.conftest import counting_reads
from tuneboard.db.engine import get_engine
from tuneboard.db.migrate import upgrade
from tuneboard.optimization.storage import SchemaMismatch, SqlStorage


@pytest.fixture(params=BACKENDS)
def bare_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no table at all: an empty SQLite file, a new PostgreSQL database."""
    url = create_database(request.param, tmp_path, migrate=False)
    if request.param == "sqlite":
        Path(sa.make_url(url).database or "").touch()
    yield url
    drop_database(url)


def _tables(url: str) -> set[str]:
    if url.startswith("sqlite"):
        with sqlite3.connect(sa.make_url(url).database or "") as conn:
            return {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    with get_engine(url).connect() as conn:
        return set(sa.inspect(conn).get_table_names())


def test_a_database_without_our_schema_is_refused_and_left_empty(bare_db: str) -> None:
    with pytest.raises(SchemaMismatch, match=r"has no Tuneboard schema.*tuneboard db upgrade"):
        SqlStorage(bare_db)
    assert _tables(bare_db) == set()
    if bare_db.startswith("sqlite"):
        assert Path(sa.make_url(bare_db).database or "").stat().st_size == 0


def test_a_database_behind_our_migrations_is_refused(bare_db: str) -> None:
    upgrade(bare_db, "0007")
    with pytest.raises(SchemaMismatch) as refused:
        SqlStorage(bare_db)
    assert "is at migration '0007', behind this Tuneboard's" in refused.value.message
    assert "tuneboard db upgrade" in refused.value.message
    assert refused.value.status_code == 503
    upgrade(bare_db)
    SqlStorage(bare_db)  # once upgraded, it is taken


def test_optunas_own_tables_are_refused(bare_db: str) -> None:
    optuna.storages.RDBStorage(bare_db)  # what `optuna ... --storage URL` leaves behind
    with pytest.raises(SchemaMismatch, match="Tuneboard's migrations do not know"):
        SqlStorage(bare_db)


def test_a_missing_sqlite_file_is_refused_not_created(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    with pytest.raises(SchemaMismatch, match="does not exist"):
        SqlStorage(f"sqlite:///{path}")
    assert not path.exists()


def test_the_check_runs_once_per_database(db_url: str) -> None:
    SqlStorage(db_url)
    with counting_reads(db_url) as reads:
        SqlStorage(db_url)
    assert reads.statements == []


def test_a_password_in_the_url_is_not_shown(tmp_path: Path) -> None:
    if "postgresql" not in BACKENDS:
        pytest.skip("needs PostgreSQL")
    url = create_database("postgresql", tmp_path, migrate=False)
    try:
        shown = sa.make_url(url).set(password="s3cret")
        # The test server trusts every login, so the password is accepted and ignored.
        with pytest.raises(SchemaMismatch) as refused:
            SqlStorage(shown.render_as_string(hide_password=False))
        assert "s3cret" not in refused.value.message and "***" in refused.value.message
    finally:
        drop_database(url)


# Optuna's and optuna-dashboard's functions that take a storage or a URL, and the position of
# that argument when it is not passed as ``storage=``.
_STORAGE_TAKERS = {
    "load_study": None, "create_study": None, "delete_study": None, "copy_study": None,
    "get_all_study_summaries": 0, "get_all_study_names": 0, "run_server": 0, "wsgi": 0,
}
_URL_OPENERS = {"RDBStorage", "get_storage"}


def test_our_code_never_hands_optuna_a_database_url() -> None:
    """Optuna opens a URL as its own RDBStorage and creates its tables there: our code gives
    Optuna storage objects only (SqlStorage, ReadOnlyStorage, RemoteStorage)."""
    root = Path(__file__).resolve().parents[3]
    offences = []
    for package in ("tuneboard", "api", "workers"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                where = f"{path.relative_to(root)}:{node.lineno}"
                if name in _URL_OPENERS:
                    offences.append(f"{where}: {name}(...)")
                if name in _STORAGE_TAKERS:
                    storage = next((k.value for k in node.keywords if k.arg == "storage"), None)
                    position = _STORAGE_TAKERS[name]
                    if storage is None and position is not None and len(node.args) > position:
                        storage = node.args[position]
                    if storage is not None and not isinstance(storage, ast.Call | ast.Name):
                        offences.append(f"{where}: storage={ast.unparse(storage)}")
                    elif isinstance(storage, ast.Name) and "url" in storage.id.lower():
                        offences.append(f"{where}: storage={storage.id}")
    assert offences == []
