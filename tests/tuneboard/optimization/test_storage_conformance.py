"""Optuna's own storage conformance suite, run on SqlStorage over every test backend."""

from __future__ import annotations

import pytest
from optuna.testing.pytest_storages import StorageTestCase

from tuneboard.optimization.storage import SqlStorage


@pytest.fixture
def storage(db_url: str) -> SqlStorage:
    return SqlStorage(db_url)


class TestSqlStorage(StorageTestCase):
    pass
