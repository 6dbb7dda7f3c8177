"""The objective API: what a trial's code (the built-in trainer or a custom objective) sees.

Objectives are plain functions ``def objective(ctx: TrialContext) -> float | dict[str, float]``
registered under the entry-point group ``tuneboard.objectives``. Nothing here knows of Celery,
Optuna or torch: the worker passes in a ``reporter`` that stores metrics and asks the pruner.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tuneboard.artifacts import ArtifactStore, LocalStore

__all__ = [
    "LATEST_CHECKPOINT", "Objective", "ObjectiveResult", "Reporter", "TrialContext", "TrialPruned",
]

ObjectiveResult = float | dict[str, float]
# The checkpoint a retry resumes from, under this key in the trial's checkpoint store.
LATEST_CHECKPOINT = "latest.pt"


class TrialPruned(Exception):
    """Raised by ``TrialContext.report`` when the study's pruner stops the trial."""


class Reporter(Protocol):
    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        """Store ``metrics`` for ``step``; raise ``TrialPruned`` when the trial should stop."""


@dataclass
class TrialContext:
    """Everything a trial needs to run, with the same API for built-in and custom objectives.

    ``params`` are the sampled search-space values merged with the study's ``fixed`` values.
    ``config`` is the study spec's objective section plus the trainer options (early_stopping,
    callbacks, lr_scaling...), as plain JSON-able data.

    Checkpoints go to :meth:`checkpoint_store` (``checkpoints``; unset, ``checkpoint_dir``),
    which may be an object store shared by every worker host: a retry resumes from its
    ``LATEST_CHECKPOINT``, fetched to a local file as ``resume_from``. ``checkpoint_dir`` is a
    local directory of the trial's; files written there stay on this host.
    """

    params: dict[str, Any]
    device: str = "cpu"
    checkpoint_dir: Path = field(default_factory=lambda: Path(".tuneboard/checkpoints/local"))
    config: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    trial_number: int = 0
    reporter: Reporter | None = None
    stop_requested: Callable[[], bool] | None = None
    resume_from: Path | None = None
    reports_flusher: Callable[[], None] | None = None
    checkpoints: ArtifactStore | None = None
    # Seconds spent in each named part of the trial (data, model, checkpoint...), by ``span``.
    spans: dict[str, float] = field(default_factory=dict)
    # Of each span open now, innermost last: the seconds of the spans closed inside it.
    _open_spans: list[float] = field(default_factory=list, repr=False)

    @contextmanager
    def span(self, name: str) -> Iterator[None]:
        """Add the block's seconds to ``spans[name]``, less those of the spans opened inside
        it, so that the spans add up to the time they cover; the worker logs them."""
        self._open_spans.append(0.0)
        start = time.perf_counter()
        try:
            yield
        finally:
            took = time.perf_counter() - start
            inner = self._open_spans.pop()
            self.spans[name] = self.spans.get(name, 0.0) + took - inner
            if self._open_spans:
                self._open_spans[-1] += took

    def checkpoint_store(self) -> ArtifactStore:
        """Where this trial's checkpoints persist, for its retries to resume from. A save lands
        after every report made before it (see :meth:`flush_reports`): ``checkpoints``, when
        given, keeps that order itself (the worker's waits for the commit off the training
        thread); the default directory store flushes the reports before each save."""
        if self.checkpoints is not None:
            return self.checkpoints
        local = LocalStore(self.checkpoint_dir)
        return local if self.reports_flusher is None else _FlushingStore(local, self.flush_reports)

    def report(self, step: int, **metrics: float) -> None:
        """Record the metrics of one step (epoch); raises TrialPruned if the pruner says so."""
        if self.reporter is not None:
            self.reporter(step, metrics)

    def flush_reports(self) -> None:
        """Block until every report so far is stored. Call it before writing a checkpoint
        anywhere but :meth:`checkpoint_store` (which keeps the order itself): a retry resumes
        after the checkpoint's epoch, so that epoch's report must not be lost."""
        if self.reports_flusher is not None:
            self.reports_flusher()

    def should_stop(self) -> bool:
        """True once the study was cancelled or its time budget ran out: stop after this step."""
        return self.stop_requested() if self.stop_requested is not None else False


class _FlushingStore(ArtifactStore):
    """``store``, with every report so far stored before each save."""

    def __init__(self, store: ArtifactStore, flush_reports: Callable[[], None]) -> None:
        self.store, self.url, self.flush_reports = store, store.url, flush_reports

    def save(self, key: str, data: bytes) -> None:
        self.flush_reports()
        self.store.save(key, data)

    def load(self, key: str) -> bytes:
        return self.store.load(key)

    def exists(self, key: str) -> bool:
        return self.store.exists(key)

    def fetch(self, key: str, directory: Path) -> Path | None:
        return self.store.fetch(key, directory)


class Objective(Protocol):
    def __call__(self, ctx: TrialContext) -> ObjectiveResult: ...
