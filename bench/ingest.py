"""Metric ingest: reports per second stored by workers, beside Optuna's ``trial.report``.

For each N of ``--workers``: a study of ``--trials`` trials run by one worker with N pool
processes (what ``tuneboard worker --concurrency N`` runs; ``max_parallel: N``), each trial
reporting ``--reports`` steps of ``--metrics`` named metrics (the study metric among them),
through the whole path (the reporter stores every step's metrics, its intermediate value, epochs
and heartbeat). Reports per second are counted over the time some trial was running (from the
trials' own start and end; with one worker, the sum of their running times); the rows stored
are checked against what was reported, so nothing is silently dropped. The peer: N fresh
processes on one study of Optuna's RDBStorage on the same server, each ``study.optimize`` of its
share of the trials, started together, reporting (``trial.report``) the same number of times
(one value per report: Optuna has no per-step metric table); counted over the span from the
first process's start to the last one's end. Beside each rate, how busy the machine's CPUs were
meanwhile (workers, API and database share them).

    python bench/ingest.py [--backend sqlite|postgresql] [--trials 3] [--reports 2000]
                           [--workers 1,2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
import optuna
import sqlalchemy as sa
from _common import busy_share, cpu_jiffies, run_together
from bookkeeping import Databases, Service, admin_key
from optuna.study import StudyDirection


def tuneboard_rate(service: Service, dbs: Databases, key: str, trials: int, reports: int,
                   metrics: int, workers: int) -> tuple[float, float]:
    """Reports per second and the CPUs' busy share, ``workers`` pool processes."""
    from tuneboard.db import session_scope
    from tuneboard.db.models import Trial, TrialMetric

    service.stop("worker")
    service.start_worker(concurrency=workers)
    auth = {"Authorization": f"Bearer {key}"}
    spec = {
        "name": f"ingest-{workers}",
        "objective": {"entrypoint": "bench-ingest", "metric": "loss", "direction": "minimize"},
        "search_space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        "fixed": {"reports": reports, "metrics": metrics},
        "sampler": {"type": "random", "seed": 0},
        "budget": {"n_trials": trials, "max_parallel": workers},
    }
    jiffies = cpu_jiffies()
    created = httpx.post(f"{service.url}/api/v1/studies", json=spec, headers=auth)
    created.raise_for_status()
    study_id = created.json()["id"]
    while httpx.get(f"{service.url}/api/v1/studies/{study_id}",
                    headers=auth).json()["state"] in ("queued", "running"):
        time.sleep(0.2)
    busy = busy_share(jiffies, cpu_jiffies())
    service.stop("worker")
    with session_scope(dbs.ours) as session:
        rows = session.execute(
            sa.select(Trial.id, Trial.state, Trial.datetime_start, Trial.datetime_complete)
            .where(Trial.study_id == study_id)
        ).all()
        stored = session.scalar(
            sa.select(sa.func.count()).select_from(TrialMetric)
            .where(TrialMetric.trial_id.in_([r[0] for r in rows]))
        )
    spans = [(r[2], r[3]) for r in rows if r[2] is not None and r[3] is not None]
    assert [r[1] for r in rows] == ["complete"] * trials and len(spans) == trials, rows
    assert stored == trials * reports * metrics, (stored, trials * reports * metrics)
    return trials * reports / running_s(spans), busy


def running_s(spans: list[tuple[datetime, datetime]]) -> float:
    """Seconds during which at least one of ``spans`` was under way."""
    total, reached = 0.0, None
    for start, end in sorted(spans):
        if reached is None or start > reached:
            total += (end - start).total_seconds()
            reached = end
        elif end > reached:
            total += (end - reached).total_seconds()
            reached = end
    return total


def optuna_process(url: str, name: str, n_trials: int, reports: int) -> Callable[[], object]:
    """One of the peer's processes: the study loaded; its run, ``n_trials`` trials."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=url,
                              sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        for step in range(1, reports + 1):
            trial.report(1.0 / step, step)
        return 1.0 / reports

    return lambda: study.optimize(objective, n_trials=n_trials)


def optuna_rate(url: str, trials: int, reports: int, workers: int) -> tuple[float, float]:
    """Reports per second and the CPUs' busy share, ``workers`` processes on one study."""
    storage = optuna.storages.RDBStorage(url)
    name = f"ingest-{workers}-{uuid.uuid4().hex[:6]}"
    study_id = storage.create_new_study([StudyDirection.MINIMIZE], name)
    shares = [trials // workers + (i < trials % workers) for i in range(workers)]
    run = run_together(optuna_process, [(url, name, share, reports) for share in shares if share])
    done = storage.get_all_trials(study_id, deepcopy=False)
    assert len(done) == trials and all(len(t.intermediate_values) == reports for t in done)
    storage.engine.dispose()
    return trials * reports / run.wall_s, run.busy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--metrics", type=int, default=10)
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    counts = [int(n) for n in args.workers.split(",") if n]
    results: dict[int, tuple[tuple[float, float], tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        dbs = Databases(args.backend, Path(tmp))
        service = Service(dbs, Path(tmp))
        try:
            key = admin_key(dbs.ours)
            service.start_api()
            for n in counts:
                results[n] = (
                    tuneboard_rate(service, dbs, key, args.trials, args.reports, args.metrics, n),
                    optuna_rate(dbs.optuna, args.trials, args.reports, n),
                )
                print(f"  {n} worker(s) measured", flush=True)
        finally:
            service.stop_all()
            dbs.drop()
    print(f"\nmetric ingest on {args.backend}: {args.trials} trials x {args.reports} reports "
          f"per side and worker count ({os.cpu_count()} CPUs)")
    print(f"{'workers':>7} | {'Tuneboard reports/s':>19} {'CPUs busy':>9} | "
          f"{'Optuna reports/s':>16} {'CPUs busy':>9} | {'ratio':>5}")
    for n, ((ours, our_busy), (theirs, their_busy)) in results.items():
        print(f"{n:>7} | {ours:>19.0f} {100 * our_busy:>8.0f}% | {theirs:>16.0f} "
              f"{100 * their_busy:>8.0f}% | {ours / theirs:>5.1f}x")
    print(f"Tuneboard: {args.metrics} metrics per report, every row checked stored; Optuna "
          "trial.report: 1 value per report")


if __name__ == "__main__":
    main()
