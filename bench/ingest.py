"""Metric ingest: reports per second stored by a worker, beside Optuna's ``trial.report``.

A study of ``--trials`` trials, one worker process, each trial reporting ``--reports`` steps of
``--metrics`` named metrics (the study metric among them), through the whole path (the reporter
stores every step's metrics, its intermediate value, epochs and heartbeat). Reports per second
are counted over the trials' running time; the rows stored are checked against what was
reported, so nothing is silently dropped. The peer: ``trial.report`` the same number of times
under ``study.optimize`` on Optuna's RDBStorage on the same server (one value per report: Optuna
has no per-step metric table).

    python bench/ingest.py [--backend sqlite|postgresql] [--trials 3] [--reports 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import httpx
import optuna
import sqlalchemy as sa
from bookkeeping import Databases, Service, admin_key


def tuneboard_rate(backend: str, trials: int, reports: int, metrics: int, home: Path) -> float:
    from tuneboard.db import session_scope
    from tuneboard.db.models import Trial, TrialMetric

    dbs = Databases(backend, home)
    service = Service(dbs, home)
    try:
        key = admin_key(dbs.ours)
        service.start_api()
        service.start_worker()
        auth = {"Authorization": f"Bearer {key}"}
        spec = {
            "name": "ingest",
            "objective": {"entrypoint": "bench-ingest", "metric": "loss", "direction": "minimize"},
            "search_space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
            "fixed": {"reports": reports, "metrics": metrics},
            "sampler": {"type": "random", "seed": 0},
            "budget": {"n_trials": trials, "max_parallel": 1},
        }
        created = httpx.post(f"{service.url}/api/v1/studies", json=spec, headers=auth)
        created.raise_for_status()
        study_id = created.json()["id"]
        while httpx.get(f"{service.url}/api/v1/studies/{study_id}",
                        headers=auth).json()["state"] in ("queued", "running"):
            time.sleep(0.2)
        with session_scope(dbs.ours) as session:
            rows = session.execute(
                sa.select(Trial.id, Trial.state, Trial.datetime_start, Trial.datetime_complete)
                .where(Trial.study_id == study_id)
            ).all()
            stored = session.scalar(
                sa.select(sa.func.count()).select_from(TrialMetric)
                .where(TrialMetric.trial_id.in_([r[0] for r in rows]))
            )
        assert [r[1] for r in rows] == ["complete"] * trials, rows
        assert stored == trials * reports * metrics, (stored, trials * reports * metrics)
        running = sum((r[3] - r[2]).total_seconds() for r in rows)
        return trials * reports / running
    finally:
        service.stop_all()
        dbs.drop()


def optuna_rate(url: str, trials: int, reports: int) -> float:
    study = optuna.create_study(storage=url, sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0.0, 1.0)
        for step in range(1, reports + 1):
            trial.report(1.0 / step, step)
        return 1.0 / reports

    start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return trials * reports / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--metrics", type=int, default=10)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        ours = tuneboard_rate(args.backend, args.trials, args.reports, args.metrics, Path(tmp))
        peer_home = Path(tmp) / "peer"
        peer_home.mkdir()
        peer_dbs = Databases(args.backend, peer_home)
        try:
            theirs = optuna_rate(peer_dbs.optuna, args.trials, args.reports)
        finally:
            peer_dbs.drop()
    print(f"metric ingest on {args.backend}: {args.trials} trials x {args.reports} reports")
    print(f"  Tuneboard worker: {ours:8.0f} reports/s ({args.metrics} metrics per report, "
          "every row checked stored)")
    print(f"  Optuna trial.report: {theirs:8.0f} reports/s (1 value per report)")
    print(f"  ratio {ours / theirs:.1f}x")


if __name__ == "__main__":
    main()
