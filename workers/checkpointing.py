"""The store a running trial's checkpoints go through (``TrialContext.checkpoints``): each save
waits for the reports made before it to be committed, then writes, off the training thread.

What it keeps:

- A checkpoint lands only after every report made before it is stored: a retry resumes after
  the checkpoint's step and never reports that step again.
- The objective waits neither for that commit nor for the write. Saves are written by one
  thread per process, shared by its trials; a save of a key whose older bytes are not written
  yet replaces them (a retry only wants the newest ``latest.pt``), so at most one checkpoint per
  key waits in memory however slow the store.
- Every save is written, or its failure raised, before :meth:`OrderedCheckpointStore.close`
  returns: the runner closes the store before the trial is told finished, so a finished trial's
  ``best.pt`` is in its store for whoever reads it (ensembles). A failed write is also raised
  at the next save: the trial fails with it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from tuneboard.artifacts import ArtifactStore

__all__ = ["OrderedCheckpointStore"]

_writer_lock = threading.Lock()
_writer: tuple[int, ThreadPoolExecutor] | None = None


def _executor() -> ThreadPoolExecutor:
    """The process's checkpoint thread, started on first use (a forked child starts its own:
    threads do not survive a fork)."""
    global _writer
    with _writer_lock:
        if _writer is None or _writer[0] != os.getpid():
            _writer = (os.getpid(), ThreadPoolExecutor(1, thread_name_prefix="checkpoints"))
        return _writer[1]


class OrderedCheckpointStore(ArtifactStore):
    """``store``, with each save written after ``flush_reports()`` (which returns once every
    report so far is stored) by the process's checkpoint thread."""

    def __init__(self, store: ArtifactStore, flush_reports: Callable[[], None]) -> None:
        self.store = store
        self.url = store.url
        self._flush_reports = flush_reports
        self._lock = threading.Lock()
        self._pending: dict[str, bytes] = {}
        self._running: Future[None] | None = None
        self._error: BaseException | None = None

    def save(self, key: str, data: bytes) -> None:
        with self._lock:
            self._raise_failure()
            self._pending[key] = data
            if self._running is None:
                self._running = _executor().submit(self._write_pending)

    def load(self, key: str) -> bytes:
        self.close()
        return self.store.load(key)

    def exists(self, key: str) -> bool:
        self.close()
        return self.store.exists(key)

    def fetch(self, key: str, directory: Path) -> Path | None:
        self.close()
        return self.store.fetch(key, directory)

    def close(self) -> None:
        """Wait until every save so far is written; raises if writing one failed."""
        while True:
            with self._lock:
                running = self._running
            if running is None:
                break
            running.result()
        with self._lock:
            self._raise_failure()

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"writing a checkpoint failed: {self._error}") from self._error

    def _write_pending(self) -> None:
        while True:
            with self._lock:
                pending, self._pending = self._pending, {}
                if not pending:
                    self._running = None
                    return
            try:
                self._flush_reports()
                for key, data in pending.items():
                    self.store.save(key, data)
            except BaseException as exc:  # raised in the trial's thread, at its next save
                with self._lock:
                    self._error, self._pending, self._running = exc, {}, None
                return
