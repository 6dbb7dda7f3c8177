"""``ctx.report`` for a running trial: each step's metrics into the store, the study metric to
Optuna's pruner, and the stop check polled.

What it keeps:

- The objective never waits for the database. Reports are stored by a writer thread, one
  transaction for whatever accumulated while the previous one ran; the pruner reads this trial's
  steps from Optuna's in-memory trial, which the reporter updates at once.
- Every report is stored before the trial is told finished, or with it: the runner ends the
  reporter first (:meth:`TrialReporter.hand_over`), and what the writer had not started writing
  by then is handed over, for the runner to write in the transaction that records the trial's
  outcome (a short trial's only batch then costs no transaction of its own, and its update of
  the trial's row, parameters included, is the outcome's update). A failure to store
  a report is raised at the next report, flush or hand-over, so the trial fails instead of
  finishing with steps missing.
- ``ctx.flush_reports()`` returns once every report so far is committed: the checkpoint store
  (:mod:`workers.checkpointing`) calls it before each write, because a retry resumes after the
  checkpoint's step and never reports that step again.
- A step reported again replaces what was stored for it.
- A database outage costs the trial nothing while it lasts less than ``TUNEBOARD_DB_OUTAGE_S``:
  the writer tries the batch again with backoff (:mod:`workers.outage`) while the objective
  goes on and its reports wait in memory, up to ``MAX_PENDING_STEPS`` steps (past that a report
  waits for the database instead). A longer outage fails the trial with the database's error.
- The trial's parameters, suggested by the ask but not yet written, are written with the first
  batch (alone, if no report comes within ``LINGER_S``), in one transaction, so no one sees some
  of them without the others; failing to store them fails the trial like a report would.
- What the pruner records on the trial while it runs (Optuna system attributes: Hyperband's
  successive-halving rungs, one per rung reached) goes with the next batch too, in the update
  of the trial's row that the batch makes anyway, instead of a transaction of its own in the
  objective's thread. Other workers' pruners see a rung once that batch commits, a few tens of
  milliseconds later; they compare against a view of the study up to ``PRUNE_VIEW_MAX_AGE_S``
  old in any case.
- A retry that resumed from a checkpoint first inherits, in the same transaction as its first
  report, the metrics and intermediate values its predecessor stored for the steps before it,
  so the trial's curve reads as one run.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from sqlalchemy.orm import Session

from tuneboard.db import describe_db_error, session_scope, utcnow
from tuneboard.objective import TrialPruned
from tuneboard.optimization.storage import SqlStorage
from tuneboard.studies import repository as repo
from workers.outage import log_failure, ride_out
from workers.stopping import StopCheck

__all__ = ["MAX_PENDING_STEPS", "ReportWriter", "TrialReporter", "UnwrittenReports"]

log = logging.getLogger(__name__)

# Steps kept in memory while the database is away; a report past this waits for it.
MAX_PENDING_STEPS = 10_000
# How long the writer waits for more reports before it writes a batch: a fast trial's reports
# then share one transaction instead of one each. Flushing and closing do not wait for it.
LINGER_S = 0.05
# How old a view of the study's finished trials the pruner may be given (``SqlStorage``'s cache):
# asked at every report, it would otherwise read the store at every report.
PRUNE_VIEW_MAX_AGE_S = 1.0


@dataclass
class TrialReporter:
    """Hands each step to a :class:`ReportWriter` (all its metrics, the study metric's
    intermediate value, the epochs run, a heartbeat) and asks the pruner. ``metric`` is the
    study metric the pruner judges, None for a multi-objective study (Optuna prunes none)."""

    url: str
    storage: SqlStorage
    trial: optuna.trial.Trial
    trial_id: int
    retried_trial_id: int | None
    metric: str | None
    stop: StopCheck
    outage_s: float | None = None
    # Called after each committed batch of reports, which set the trial's heartbeat.
    on_written: Callable[[], None] | None = None
    # Parameters to write with the first batch: (internal value, distribution) by name.
    params: Mapping[str, tuple[float, BaseDistribution]] | None = None
    last_metrics: dict[str, float] = field(default_factory=dict)
    _intermediate: dict[int, float] = field(default_factory=dict)
    _max_step: int = -1
    _writer: ReportWriter | None = None

    def __post_init__(self) -> None:
        if self.params:
            self._writer = self._new_writer()

    def _new_writer(self) -> ReportWriter:
        return ReportWriter(self.url, self.trial_id, self.retried_trial_id,
                            outage_s=self.outage_s, stop=self.stop, on_written=self.on_written,
                            storage=self.storage, params=self.params)

    def __call__(self, step: int, metrics: Mapping[str, float]) -> None:
        step = int(step)
        values = {str(k): float(v) for k, v in metrics.items()}
        inherit = self._max_step < 0 and self.retried_trial_id is not None and step > 1
        inherited = self._inherited_intermediates(step) if inherit else {}
        new: dict[int, float] = {}
        if self.metric is not None:
            new = {**inherited, **({step: values[self.metric]} if self.metric in values else {})}
            self._intermediate.update(new)
        if self._writer is None:
            self._writer = self._new_writer()
        self._writer.put(
            step, values,
            replace=step <= self._max_step,
            copy_before=step if inherit else None,
            intermediate_values=dict(self._intermediate) if new else None,
        )
        for s, v in new.items():
            _remember_intermediate(self.trial, s, v)
        self._max_step = max(self._max_step, step)
        self.last_metrics = values
        self.stop.raise_if_aborted()
        if step in new:
            with self.storage.reads_up_to(PRUNE_VIEW_MAX_AGE_S):
                prune = self.trial.should_prune()
            if prune:
                raise TrialPruned(f"pruned at step {step}")

    def put_system_attrs(self, system_attrs: Mapping[str, Any]) -> None:
        """The running trial's whole Optuna system-attribute record, as stored, for the next
        batch to write (see the module's docstring)."""
        if self._writer is None:
            self._writer = self._new_writer()
        self._writer.put_system_attrs(system_attrs)

    def flush(self) -> None:
        """Wait until every report so far is stored (called before each checkpoint's write)."""
        if self._writer is not None:
            self._writer.drain()

    def hand_over(self) -> UnwrittenReports | None:
        """End the writer: wait for the batch it is writing, and return what it had not started
        (None: nothing left), for the caller to write in a transaction of its own; raises if
        storing a report failed."""
        return self._writer.hand_over() if self._writer is not None else None

    def _inherited_intermediates(self, before_step: int) -> dict[int, float]:
        assert self.retried_trial_id is not None
        source = self.storage.get_trial(self.retried_trial_id)
        return {s: v for s, v in source.intermediate_values.items() if s < before_step}


@dataclass
class _Batch:
    steps: dict[int, dict[str, float]] = field(default_factory=dict)
    replace: set[int] = field(default_factory=set)
    copy_before: int | None = None
    intermediate_values: dict[int, float] | None = None
    params: Mapping[str, tuple[float, BaseDistribution]] | None = None
    system_attrs: Mapping[str, Any] | None = None

    @property
    def empty(self) -> bool:
        return not self.steps and not self.params and self.system_attrs is None


class UnwrittenReports:
    """Reports (and parameters) a writer handed over, for the caller's transaction: a try after
    the first replaces their steps, as the writer's own retries do."""

    def __init__(self, writer: ReportWriter, batch: _Batch) -> None:
        self._writer = writer
        self._batch = batch
        self._tries = 0

    def write(self, session: Session) -> dict[str, Any]:
        """Their statements, but for the update of the running trial's row: its columns are
        returned (the epochs run, the heartbeat, Optuna's records, the first parameters), for
        the caller to set in the update that records the trial's outcome, which holds only
        while the trial runs, as this update would have."""
        self._tries += 1
        batch = self._batch
        if self._tries > 1:
            batch = dataclasses.replace(batch, replace=set(batch.steps))
        return self._writer.write_in(session, batch, row=False)


class ReportWriter:
    """Stores reports from a thread of its own, one transaction per batch of whatever was put
    while the previous batch was written. A batch is tried again while the database is
    unreachable, for up to ``outage_s`` seconds (None: as long as it takes). After a failure
    it stores nothing more.

    Each batch's transaction also reads what the trial's stop check polls for (``stop``) once
    half its interval has passed, so a trial that reports at least every half second never
    polls in a transaction of its own, and calls ``on_written`` once committed (the heartbeat:
    the batch set ``heartbeat_at``). ``params``, written through ``storage``, go with the first
    batch."""

    def __init__(
        self, url: str, trial_id: int, retried_trial_id: int | None, *,
        outage_s: float | None = None,
        stop: StopCheck | None = None,
        on_written: Callable[[], None] | None = None,
        storage: SqlStorage | None = None,
        params: Mapping[str, tuple[float, BaseDistribution]] | None = None,
    ) -> None:
        if params and storage is None:
            raise ValueError("parameters are written through a storage")
        self.url = url
        self.storage = storage
        self.trial_id = trial_id
        self.retried_trial_id = retried_trial_id
        self.outage_s = outage_s
        self.stop = stop
        self.on_written = on_written
        self._batch = _Batch(params=dict(params) if params else None)
        self._queued = 0
        self._written = 0
        self._closed = False
        self._draining = 0
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"reports-{trial_id}")
        self._thread.start()

    def put(
        self,
        step: int,
        metrics: dict[str, float],
        *,
        replace: bool,
        copy_before: int | None,
        intermediate_values: dict[int, float] | None,
    ) -> None:
        with self._cond:
            while len(self._batch.steps) >= MAX_PENDING_STEPS and self._error is None:
                self._cond.wait()
            self._raise_failure()
            batch = self._batch
            batch.steps[step] = {**batch.steps.get(step, {}), **metrics}
            if replace:
                batch.replace.add(step)
            if copy_before is not None:
                batch.copy_before = copy_before
            if intermediate_values is not None:
                batch.intermediate_values = intermediate_values
            self._queued += 1
            self._cond.notify_all()

    def put_system_attrs(self, system_attrs: Mapping[str, Any]) -> None:
        """The trial's whole system-attribute record, replacing any not yet written."""
        with self._cond:
            self._raise_failure()
            self._batch.system_attrs = dict(system_attrs)
            self._queued += 1
            self._cond.notify_all()

    def drain(self) -> None:
        """Wait until everything put so far is committed; raises if storing failed."""
        with self._cond:
            target = self._queued
            self._draining += 1
            self._cond.notify_all()
            try:
                while self._written < target and self._error is None:
                    self._cond.wait()
            finally:
                self._draining -= 1
            self._raise_failure()

    def hand_over(self) -> UnwrittenReports | None:
        """Stop: wait for the batch being written, and return what is not (None: nothing);
        raises if storing failed."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        self._raise_failure()
        with self._cond:
            batch, self._batch = self._batch, _Batch()
        return None if batch.empty else UnwrittenReports(self, batch)

    def _write_now(self) -> bool:
        return bool(self._closed or self._draining
                    or len(self._batch.steps) >= MAX_PENDING_STEPS)

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise RuntimeError(
                f"storing the trial's reports failed: {describe_db_error(self._error)}"
            ) from self._error

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._batch.empty and not self._closed:
                    self._cond.wait()
                if self._closed:  # what is left is handed over
                    return
                self._cond.wait_for(self._write_now, timeout=LINGER_S)
                if self._closed:
                    return
                batch, self._batch = self._batch, _Batch()
                covered = self._queued
            try:
                self._write_riding_out_outages(batch)
                if self.on_written is not None:
                    self.on_written()
                with self._cond:
                    self._written = covered
                    self._cond.notify_all()
            except BaseException as exc:
                with self._cond:
                    self._error = exc
                    self._cond.notify_all()
                log_failure(log, exc, "storing reports of trial id %s failed", self.trial_id)
                return

    def _write_riding_out_outages(self, batch: _Batch) -> None:
        tries = 0

        def attempt() -> None:
            nonlocal tries
            tries += 1
            # A try that failed at its commit may have committed after all: a retry replaces
            # the batch's steps instead of adding them a second time.
            again = dataclasses.replace(batch, replace=set(batch.steps))
            self._write(batch if tries == 1 else again)

        ride_out(f"reports of trial id {self.trial_id}", attempt, limit_s=self.outage_s)

    def _write(self, batch: _Batch) -> None:
        polled = self.stop is not None and self.stop.wants_news()
        with session_scope(self.url) as session:
            if not batch.params:  # a crash may lose reports, not the parameters of a trial
                repo.commit_without_flush(session)
            self.write_in(session, batch)
            progress = repo.trial_progress(session, self.trial_id) if polled else None
        if polled:
            assert self.stop is not None
            self.stop.observe(progress)  # seen in a committed transaction

    def write_in(self, session: Session, batch: _Batch, *, row: bool = True) -> dict[str, Any]:
        """The batch's statements, in the caller's transaction. ``row`` False: all but the
        update of the trial's row, whose columns are returned instead."""
        columns: dict[str, Any] = {}
        if batch.params:
            assert self.storage is not None
            conn = session.connection()
            first = None if row else self.storage.first_params_columns(conn, self.trial_id,
                                                                        batch.params)
            if first is None:
                self.storage.set_trial_params_in(conn, self.trial_id, batch.params)
            else:
                columns.update(first)
        if batch.copy_before is not None and self.retried_trial_id is not None:
            repo.copy_metrics(session, self.retried_trial_id, self.trial_id, batch.copy_before)
        if row:
            repo.record_reports(
                session, self.trial_id, batch.steps, utcnow(),
                replace=batch.replace, intermediate_values=batch.intermediate_values,
                system_attrs=batch.system_attrs,
            )
            return columns
        repo.record_metrics(session, self.trial_id, batch.steps, replace=batch.replace)
        reported = repo.reported_columns(batch.steps, utcnow(),
                                         intermediate_values=batch.intermediate_values,
                                         system_attrs=batch.system_attrs)
        return {**columns, **(reported or {})}


def _remember_intermediate(trial: optuna.trial.Trial, step: int, value: float) -> None:
    # What ``Trial.report`` does after its own storage write, so that ``should_prune`` sees the
    # step; ours went into the report's transaction instead, one commit per step instead of two.
    trial._cached_frozen_trial.intermediate_values[step] = value
