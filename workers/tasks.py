"""Celery tasks: thin. They carry ids only and open their own sessions; the work is in
:mod:`workers.runner` and :mod:`workers.reaper`."""

from __future__ import annotations

import os
from typing import Any

from tuneboard.config import get_settings
from tuneboard.queue import REAP_TASK, RUN_TRIAL_TASK
from workers import reaper, runner
from workers.celery_app import app

__all__ = ["reap", "run_trial"]


@app.task(name=RUN_TRIAL_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def run_trial(self: Any, trial_id: int) -> str | None:
    worker = f"{self.request.hostname or 'worker'}:{os.getpid()}"
    return runner.run_trial(int(trial_id), worker=worker, settings=get_settings())


@app.task(name=REAP_TASK)
def reap() -> dict[str, int]:
    """One reaper pass, for deployments that schedule it with Celery beat."""
    return reaper.reap_once(get_settings()).as_dict()
