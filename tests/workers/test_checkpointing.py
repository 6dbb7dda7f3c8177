"""The running trial's checkpoint store: saves wait for the reports' commit off the caller's
thread, in order, coalesced, and every one is written (or its failure raised) by close."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tuneboard.artifacts import LocalStore
from workers.checkpointing import OrderedCheckpointStore


def test_a_save_returns_at_once_and_lands_after_the_reports(tmp_path: Path) -> None:
    committed = threading.Event()
    seen: list[bool] = []

    def flush_reports() -> None:
        committed.wait(10)
        seen.append((tmp_path / "latest.pt").exists())

    store = OrderedCheckpointStore(LocalStore(tmp_path), flush_reports)
    store.save("latest.pt", b"epoch 1")
    assert not (tmp_path / "latest.pt").exists()  # still waiting for the commit
    store.save("latest.pt", b"epoch 2")
    store.save("best.pt", b"epoch 2")
    committed.set()
    store.close()
    assert seen[0] is False  # nothing was written before the reports were stored
    assert (tmp_path / "latest.pt").read_bytes() == b"epoch 2"
    assert store.load("best.pt") == b"epoch 2"


def test_a_failed_write_is_raised_at_the_next_save_and_at_close(tmp_path: Path) -> None:
    (tmp_path / "latest.pt").mkdir()  # a directory where the file should go: the write fails
    store = OrderedCheckpointStore(LocalStore(tmp_path), lambda: None)
    store.save("latest.pt", b"epoch 1")
    with pytest.raises(RuntimeError, match="writing a checkpoint failed"):
        store.close()
    with pytest.raises(RuntimeError, match="writing a checkpoint failed"):
        store.save("latest.pt", b"epoch 2")


def test_a_failed_report_commit_fails_the_save(tmp_path: Path) -> None:
    def flush_reports() -> None:
        raise RuntimeError("storing the trial's reports failed: the database is gone")

    store = OrderedCheckpointStore(LocalStore(tmp_path), flush_reports)
    store.save("latest.pt", b"epoch 1")
    with pytest.raises(RuntimeError, match="the database is gone"):
        store.close()
    assert not (tmp_path / "latest.pt").exists()
