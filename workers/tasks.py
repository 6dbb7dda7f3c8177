"""Celery tasks: thin. They carry ids only and open their own sessions; the work is in
:mod:`workers.runner` and :mod:`workers.reaper`.

A worker whose trial ends runs the study's next trial itself, without sending it through the
broker, when nothing waits on its queue: a broker round trip per trial is most of the
bookkeeping of a short trial, and with other work waiting the broker's order is kept. The kept
trial is a WAITING row like any other (if this worker dies first, the reaper sends it). Keeping
stops once the task has run for ``CHAIN_WINDOW_S``, so that a worker asked to shut down is not
held up by a long chain.
"""

from __future__ import annotations

import os
import time
from typing import Any

from tuneboard.config import get_settings
from tuneboard.queue import ENSEMBLE_TASK, REAP_TASK, RUN_TRIAL_TASK
from workers import ensemble, reaper, runner
from workers.broker import ready_messages
from workers.celery_app import app

__all__ = ["CHAIN_WINDOW_S", "evaluate_ensemble", "reap", "run_trial"]

CHAIN_WINDOW_S = 10.0


@app.task(name=RUN_TRIAL_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def run_trial(self: Any, trial_id: int) -> str | None:
    worker = f"{self.request.hostname or 'worker'}:{os.getpid()}"
    settings = get_settings()
    started = time.monotonic()

    def keep_next(queue: str) -> bool:
        return time.monotonic() - started < CHAIN_WINDOW_S and ready_messages(app, queue) == 0

    done = runner.run_trial(int(trial_id), worker=worker, settings=settings, keep_next=keep_next)
    state = done.state if done is not None else None
    while done is not None and done.kept is not None:
        done = runner.run_trial(done.kept, worker=worker, settings=settings, keep_next=keep_next)
        state = done.state if done is not None else state
    return state


@app.task(name=REAP_TASK)
def reap() -> dict[str, int]:
    """One reaper pass, for deployments that schedule it with Celery beat."""
    return reaper.reap_once(get_settings()).as_dict()


@app.task(name=ENSEMBLE_TASK, acks_late=True, reject_on_worker_lost=True)
def evaluate_ensemble(ensemble_id: int) -> str | None:
    """Evaluate an ensemble of a study's best trials (:mod:`workers.ensemble`)."""
    state = ensemble.run_ensemble(int(ensemble_id), get_settings())
    return None if state is None else str(state)
