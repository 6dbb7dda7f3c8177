"""Bookkeeping per trial: a no-op objective with 20 reports through the whole service path
(HTTP create -> broker -> worker -> store) against plain Optuna ``RDBStorage`` in the same run.

Tuneboard: the API (uvicorn) and one Celery worker (one pool process) on the chosen backend,
SQLite with the embedded broker or PostgreSQL with Redis. A study of ``--trials`` trials, one at
a time (``max_parallel: 1``), random sampler, no pruner; the objective reports 20 times and the
worker asks the pruner after each report, as Optuna users do. Per trial is the span from the
first trial's start to the last one's end over the number of trials, plus the HTTP create
amortised over them. With ``--seed K`` the study first gets K finished trials (20 intermediate
values each) so that the per-trial time can be read at 1k and 10k trials (design: flat).

Optuna: the same objective (``trial.report`` + ``trial.should_prune`` 20 times) under
``study.optimize`` with RDBStorage on a sibling database of the same server (SQLite: a file in
the same directory; Optuna's schema and ours both keep an ``alembic_version`` table).

    python bench/bookkeeping.py [--backend sqlite|postgresql] [--trials 200] [--seed 0,1000,10000]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import optuna
import sqlalchemy as sa
from optuna.distributions import FloatDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "bench" / "plugins"
ADMIN_URL = os.environ.get(
    "TUNEBOARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TUNEBOARD_BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
REPORTS = 20

sys.path.insert(0, str(PLUGINS))
from tuneboard_bench_objectives import REPORTS as PLUGIN_REPORTS  # noqa: E402

assert PLUGIN_REPORTS == REPORTS


def spec(n_trials: int) -> dict[str, Any]:
    return {
        "name": "bookkeeping",
        "objective": {"entrypoint": "bench-noop", "metric": "loss", "direction": "minimize"},
        "search_space": {"x": {"type": "float", "low": -5.0, "high": 5.0}},
        "sampler": {"type": "random", "seed": 1},
        "pruner": {"type": "none"},
        "budget": {"n_trials": n_trials, "max_parallel": 1},
    }


# --- Databases --------------------------------------------------------------------------------


class Databases:
    """Ours and Optuna's, side by side on one server; removed at the end."""

    def __init__(self, backend: str, home: Path) -> None:
        self.backend = backend
        self.names: list[str] = []
        if backend == "sqlite":
            self.ours = f"sqlite:///{home / 'tuneboard.db'}"
            self.optuna = f"sqlite:///{home / 'optuna.db'}"
            self.broker = f"sqla+sqlite:///{home / 'broker.db'}"
        else:
            tag = uuid.uuid4().hex[:8]
            self.ours = self._create(f"tb_bench_{tag}_tuneboard")
            self.optuna = self._create(f"tb_bench_{tag}_optuna")
            self.broker = REDIS_URL
            import redis

            redis.Redis.from_url(REDIS_URL).flushdb()

    def _create(self, name: str) -> str:
        with sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    def drop(self) -> None:
        from tuneboard.db import dispose_engines

        dispose_engines()
        for name in self.names:
            with sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT").connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- Processes --------------------------------------------------------------------------------


class Service:
    """The API and one worker, started by module path as ``tuneboard`` would."""

    def __init__(self, dbs: Databases, home: Path) -> None:
        self.home = home
        self.port = _free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TUNEBOARD_")},
            "TUNEBOARD_HOME": str(home),
            "TUNEBOARD_DATABASE_URL": dbs.ours,
            "TUNEBOARD_BROKER_URL": dbs.broker,
            "PYTHONPATH": str(PLUGINS),
            "OMP_NUM_THREADS": "1",
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def start(self, name: str, argv: list[str], ready: str) -> None:
        log = self.home / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True, cwd=ROOT)
        self.procs[name], self.logs[name] = proc, log
        deadline = time.monotonic() + 120
        while ready not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)

    def start_api(self) -> None:
        self.start("api", [sys.executable, "-m", "uvicorn", "api.main:app", "--port",
                           str(self.port), "--log-level", "warning"], "")
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(self.logs["api"].read_text())
            time.sleep(0.2)

    def start_worker(self) -> None:
        self.start("worker", [sys.executable, "-m", "celery", "-A", "workers.celery_app",
                              "worker", "-P", "prefork", "-c", "1", "-Q", "default", "-l", "INFO",
                              "--without-heartbeat", "--without-mingle", "--without-gossip"],
                   " ready.")

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- Measurements -----------------------------------------------------------------------------


def admin_key(url: str) -> str:
    from tuneboard.db import session_scope
    from tuneboard.db.migrate import upgrade
    from tuneboard.teams import service as teams

    upgrade(url)
    with session_scope(url) as session:
        _, raw = teams.create_team(session, f"bench-{uuid.uuid4().hex[:6]}")
    return raw


def seed_trials(url: str, study_id: int, count: int) -> None:
    """``count`` finished trials with 20 intermediate values each, in the study's history."""
    from tuneboard.optimization.storage import SqlStorage

    rng = random.Random(0)
    dist = {"x": FloatDistribution(-5.0, 5.0)}
    trials: list[FrozenTrial] = []
    for _ in range(count):
        x = rng.uniform(-5.0, 5.0)
        trials.append(optuna.trial.create_trial(
            state=TrialState.COMPLETE, value=(x - 2.0) ** 2, params={"x": x}, distributions=dist,
            intermediate_values={s: (x - 2.0) ** 2 + 1.0 / s for s in range(1, REPORTS + 1)},
        ))
    storage = SqlStorage(url)
    for i in range(0, count, 2000):
        storage.add_trials(study_id, trials[i : i + 2000])


def tuneboard_per_trial(
    service: Service, dbs: Databases, key: str, n_trials: int, seed: int
) -> dict[str, float]:
    """The worker is (re)started after the study exists, so its first trial sees the seeds."""
    from tuneboard.db import session_scope
    from tuneboard.db.models import Study, Trial

    service.stop("worker")
    auth = {"Authorization": f"Bearer {key}"}
    started = time.perf_counter()
    created = httpx.post(f"{service.url}/api/v1/studies", json=spec(n_trials), headers=auth)
    create_s = time.perf_counter() - started
    created.raise_for_status()
    study_id = int(created.json()["id"])
    if seed:
        seed_trials(dbs.ours, study_id, seed)
    service.start_worker()
    while httpx.get(f"{service.url}/api/v1/studies/{study_id}", headers=auth).json()["state"] in (
        "queued", "running",
    ):
        time.sleep(0.25)
    with session_scope(dbs.ours) as session:
        state = session.scalar(sa.select(Study.state).where(Study.id == study_id))
        rows = session.execute(
            sa.select(Trial.dispatched_at, Trial.datetime_start, Trial.datetime_complete)
            .where(Trial.study_id == study_id, Trial.origin == "sampler",
                   Trial.state == "complete")
            .order_by(Trial.number)
        ).all()
    assert state == "completed" and len(rows) == n_trials, (state, len(rows))
    span = (rows[-1][2] - rows[0][1]).total_seconds()
    return {
        "per_trial_ms": 1000 * (span + create_s) / n_trials,
        "create_ms": 1000 * create_s,
        # Where a trial's time goes: queued in the broker, running in the worker (claim, ask,
        # 20 reports, tell), and from its end to the next trial's dispatch (verdict, dispatch).
        "broker_ms": _median_ms(r[1] - r[0] for r in rows),
        "worker_ms": _median_ms(r[2] - r[1] for r in rows),
        "handover_ms": _median_ms(b[0] - a[2] for a, b in pairwise(rows)),
    }


def _median_ms(deltas: Any) -> float:
    return 1000 * statistics.median(d.total_seconds() for d in deltas)


def optuna_per_trial(url: str, n_trials: int) -> dict[str, float]:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5.0, 5.0)
        loss = 0.0
        for step in range(1, REPORTS + 1):
            loss = (x - 2.0) ** 2 + 1.0 / step
            trial.report(loss, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return loss

    study = optuna.create_study(
        storage=optuna.storages.RDBStorage(url), sampler=optuna.samplers.RandomSampler(seed=1),
        pruner=optuna.pruners.NopPruner(), direction=StudyDirection.MINIMIZE.name.lower(),
        study_name=f"bookkeeping-{uuid.uuid4().hex[:6]}",
    )
    started = time.perf_counter()
    study.optimize(objective, n_trials=n_trials)
    return {"per_trial_ms": 1000 * (time.perf_counter() - started) / n_trials}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", default="0,1000,10000",
                        help="finished trials already in the study, comma-separated")
    parser.add_argument("--repeats", type=int, default=1, help="Optuna runs (median)")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seed.split(",") if s]
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    home = Path(tempfile.mkdtemp(prefix="tb-bench-"))
    dbs = Databases(args.backend, home)
    service = Service(dbs, home)
    try:
        key = admin_key(dbs.ours)
        service.start_api()
        tuneboard_per_trial(service, dbs, key, 5, 0)  # warm-up: imports, caches, queues
        ours = {seed: tuneboard_per_trial(service, dbs, key, args.trials, seed) for seed in seeds}
        baseline = statistics.median(
            optuna_per_trial(dbs.optuna, args.trials)["per_trial_ms"] for _ in range(args.repeats)
        )
    finally:
        service.stop_all()
        dbs.drop()

    broker = "embedded broker" if args.backend == "sqlite" else "Redis"
    print(f"\nbookkeeping per trial: no-op objective, {REPORTS} reports, {args.trials} trials one "
          f"at a time, {args.backend} + {broker}")
    print(f"{'trials already in the study':>28} {'Tuneboard (HTTP+broker+worker)':>32} "
          f"{'Optuna RDBStorage':>18} {'ratio':>6}")
    for seed, result in ours.items():
        ratio = result["per_trial_ms"] / baseline
        print(f"{seed:>28,} {result['per_trial_ms']:>29.1f} ms {baseline:>15.1f} ms "
              f"{ratio:>6.2f}")
    print("\nTuneboard per trial, medians: in the broker / in the worker / end to next dispatch")
    for seed, result in ours.items():
        print(f"{seed:>28,} {result['broker_ms']:>8.1f} ms {result['worker_ms']:>8.1f} ms "
              f"{result['handover_ms']:>8.1f} ms   (HTTP create {result['create_ms']:.0f} ms)")
    print("(Optuna measured on a fresh study; target: ratio <= 0.5, flat across study sizes)")


if __name__ == "__main__":
    main()
