from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from tests.db_support import BACKENDS, create_database, drop_database, empty_database

os.environ.setdefault("TUNEBOARD_ENVIRONMENT", "test")
# Rate limits out of the way of tests that do not test them (tests/api/test_ratelimit.py does).
for _limit in ("PER_KEY", "PER_ADDRESS", "AUTH_FAILURES"):
    os.environ.setdefault(f"TUNEBOARD_RATE_LIMIT_{_limit}", "1000000/minute")
# Embedded defaults (broker, checkpoints) land in a scratch directory, not the checkout.
os.environ.setdefault("TUNEBOARD_HOME", tempfile.mkdtemp(prefix="tuneboard-test-home-"))


@pytest.fixture(scope="session", params=BACKENDS)
def migrated_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database URL per backend (SQLite file, PostgreSQL database), at the head migration."""
    url = create_database(request.param, tmp_path_factory.mktemp(request.param))
    yield url
    drop_database(url)


@pytest.fixture
def db_url(migrated_db: str) -> Iterator[str]:
    """The backend's database, emptied after the test."""
    yield migrated_db
    empty_database(migrated_db)
