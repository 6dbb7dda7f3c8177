"""Bookkeeping per trial: a no-op objective with 20 reports through the whole service path
(HTTP create -> broker -> worker -> store) against plain Optuna ``RDBStorage`` in the same run.

Tuneboard: the API (uvicorn) and one Celery worker (one pool process) on the chosen backend,
SQLite with the embedded broker or PostgreSQL with Redis. A study of ``--trials`` trials, one at
a time (``max_parallel: 1``), random sampler, no pruner; the objective reports 20 times and the
worker asks the pruner after each report, as Optuna users do. Per trial is the span from the
first trial's start to the last one's end over the number of trials, plus the HTTP create
amortised over them. With ``--seed K`` the study first gets K finished trials (20 intermediate
values each) so that the per-trial time can be read at 1k and 10k trials (the target: flat).

Optuna: the same objective (``trial.report`` + ``trial.should_prune`` 20 times) under
``study.optimize`` with RDBStorage on a sibling database of the same server (SQLite: a file in
the same directory; Optuna's schema and ours both keep an ``alembic_version`` table).

With ``--workers 1,2,4,8``, the same no-op objective under parallel load, median pruner: for
each N, one Tuneboard worker with N pool processes (what ``tuneboard worker --concurrency N``
runs; ``max_parallel: N``) against N processes running ``study.optimize`` on one RDBStorage
study, ``--trials`` trials in all on each side. Per side and per trial: wall time, database
transactions (PostgreSQL's ``pg_stat_database`` of each side's own database, so every process
and every ping is in it), statements (counted in each process by SQLAlchemy's events:
``pg_stat_statements`` needs a server restart to load), the worker processes' CPU seconds,
and where the transactions go by code path (``bench/_pgstats.py``).

    python bench/bookkeeping.py [--backend sqlite|postgresql] [--trials 200] [--seed 0,1000,10000]
    python bench/bookkeeping.py --backend postgresql --workers 1,2,4,8 --trials 400
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
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
PGSTATS = ROOT / "bench" / "_pgstats.py"

sys.path.insert(0, str(PLUGINS))
sys.path.insert(0, str(ROOT / "bench"))
import _pgstats as pgstats  # noqa: E402
from _common import free_port  # noqa: E402
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
            self.ours_name, self.optuna_name = self.names
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
        self.port = free_port()
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
        if pgstats.ENV in self.env:
            argv = [argv[0], str(PGSTATS), *argv[1:]]  # counted by code path
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

    def start_worker(self, concurrency: int = 1) -> None:
        """What ``tuneboard worker --concurrency N --no-reaper`` runs on a host without GPU."""
        self.start("worker", [sys.executable, "-m", "celery", "-A", "workers.celery_app",
                              "worker", "-P", "prefork", "-c", str(concurrency), "-Q", "default",
                              "-l", "INFO", "--without-heartbeat", "--without-mingle",
                              "--without-gossip"],
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


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)
    loss = 0.0
    for step in range(1, REPORTS + 1):
        loss = (x - 2.0) ** 2 + 1.0 / step
        trial.report(loss, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return loss


def optuna_per_trial(url: str, n_trials: int) -> dict[str, float]:
    study = optuna.create_study(
        storage=optuna.storages.RDBStorage(url), sampler=optuna.samplers.RandomSampler(seed=1),
        pruner=optuna.pruners.NopPruner(), direction=StudyDirection.MINIMIZE.name.lower(),
        study_name=f"bookkeeping-{uuid.uuid4().hex[:6]}",
    )
    started = time.perf_counter()
    study.optimize(_objective, n_trials=n_trials)
    return {"per_trial_ms": 1000 * (time.perf_counter() - started) / n_trials}


# --- Under parallel load ----------------------------------------------------------------------


def parallel_spec(n_trials: int, workers: int) -> dict[str, Any]:
    raw = spec(n_trials)
    raw["name"] = f"bookkeeping-{workers}"
    raw["pruner"] = {"type": "median"}
    raw["budget"]["max_parallel"] = workers
    return raw


def poll_until_finished(url: str, study_id: int) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    query = sa.text("SELECT state FROM studies WHERE id = :id")
    try:
        while True:
            with engine.connect() as conn:
                if conn.execute(query, {"id": study_id}).scalar_one() not in ("queued", "running"):
                    return
            time.sleep(0.5)
    finally:
        engine.dispose()


def _side(wall_s: float, cpu_s: float, stats: dict[str, int], counts: dict[str, Any],
          n_trials: int) -> dict[str, Any]:
    return {
        "per_trial_ms": 1000 * wall_s / n_trials,
        "xact": pgstats.transactions(stats) / n_trials,
        "statements": sum(counts["statements"].values()) / n_trials,
        "checkouts": sum(counts["checkouts"].values()) / n_trials,
        "cpu_ms": 1000 * cpu_s / n_trials,
        "rows": (stats["tup_returned"] + stats["tup_inserted"] + stats["tup_updated"]
                 + stats["tup_deleted"]) / n_trials,
        "breakdown": pgstats.summary(counts, n_trials),
    }


def tuneboard_parallel(
    service: Service, dbs: Databases, key: str, n_trials: int, workers: int, stats_dir: Path
) -> dict[str, Any]:
    """N pool processes from one worker, ready before the study is created: CPU and database
    counts cover the study's trials, not the worker's start."""
    service.stop("worker")
    counted = stats_dir / f"tuneboard-{workers}"
    counted.mkdir()
    service.env[pgstats.ENV] = str(counted)
    service.start_worker(concurrency=workers)
    worker = service.procs["worker"]
    time.sleep(1.0)  # the pool's children forked and connected to the broker
    before = pgstats.settled(ADMIN_URL, dbs.ours_name)
    cpu_before = pgstats.group_cpu_s(worker.pid)
    auth = {"Authorization": f"Bearer {key}"}
    started = time.perf_counter()
    created = httpx.post(f"{service.url}/api/v1/studies", json=parallel_spec(n_trials, workers),
                         headers=auth)
    create_s = time.perf_counter() - started
    created.raise_for_status()
    study_id = int(created.json()["id"])
    poll_until_finished(dbs.ours, study_id)
    cpu_s = pgstats.group_cpu_s(worker.pid) - cpu_before
    time.sleep(1.0)  # the counters' last dump
    service.stop("worker")
    del service.env[pgstats.ENV]
    # The API's backend reports its counts within ten seconds of going idle after the create.
    time.sleep(max(0.0, 11.0 - (time.perf_counter() - started)))
    stats = pgstats.delta(pgstats.settled(ADMIN_URL, dbs.ours_name), before)
    from tuneboard.db import session_scope
    from tuneboard.db.models import Study, Trial

    with session_scope(dbs.ours) as session:
        state = session.scalar(sa.select(Study.state).where(Study.id == study_id))
        first, last, finished = session.execute(
            sa.select(sa.func.min(Trial.datetime_start), sa.func.max(Trial.datetime_complete),
                      sa.func.count())
            .where(Trial.study_id == study_id, Trial.state.in_(("complete", "pruned")))
        ).one()
    assert state == "completed" and finished == n_trials, (state, finished)
    wall_s = (last - first).total_seconds() + create_s
    return _side(wall_s, cpu_s, stats, pgstats.collect(counted), n_trials)


def optuna_parallel(dbs: Databases, n_trials: int, workers: int, stats_dir: Path) -> dict[str, Any]:
    """N processes, each ``study.optimize`` of its share of the trials, started together once
    every one has imported Optuna and loaded the study."""
    counted = stats_dir / f"optuna-{workers}"
    counted.mkdir()
    before = pgstats.settled(ADMIN_URL, dbs.optuna_name)
    storage = optuna.storages.RDBStorage(dbs.optuna)
    name = f"bookkeeping-{workers}-{uuid.uuid4().hex[:6]}"
    optuna.create_study(storage=storage, study_name=name,
                        direction=StudyDirection.MINIMIZE.name.lower())
    storage.engine.dispose()
    env = {**os.environ, pgstats.ENV: str(counted), "OMP_NUM_THREADS": "1"}
    shares = [n_trials // workers + (i < n_trials % workers) for i in range(workers)]
    procs = [
        subprocess.Popen([sys.executable, __file__, "--optuna-worker", dbs.optuna, name,
                          str(share), str(i)], env=env, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, start_new_session=True)
        for i, share in enumerate(shares)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=3600)
        assert proc.returncode == 0, out
        results.append(json.loads(out.strip().splitlines()[-1]))
    wall_s = max(r["end"] for r in results) - min(r["start"] for r in results)
    cpu_s = sum(r["cpu_s"] for r in results)
    stats = pgstats.delta(pgstats.settled(ADMIN_URL, dbs.optuna_name), before)
    done = optuna.load_study(study_name=name, storage=dbs.optuna).get_trials(deepcopy=False)
    assert len(done) == n_trials and all(t.state.is_finished() for t in done)
    return _side(wall_s, cpu_s, stats, pgstats.collect(counted), n_trials)


def optuna_worker(url: str, name: str, n_trials: int, index: int) -> None:
    """One of ``optuna_parallel``'s processes; prints its span and CPU seconds as JSON."""
    pgstats.install()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=optuna.storages.RDBStorage(url),
                              sampler=optuna.samplers.RandomSampler(seed=index),
                              pruner=optuna.pruners.MedianPruner())
    print("ready", flush=True)
    sys.stdin.readline()
    start, cpu = time.time(), time.process_time()
    study.optimize(_objective, n_trials=n_trials)
    result = {"start": start, "end": time.time(), "cpu_s": time.process_time() - cpu}
    print(json.dumps(result), flush=True)


def run_parallel(args: argparse.Namespace) -> None:
    if args.backend != "postgresql":
        raise SystemExit("--workers measures PostgreSQL's counters: use --backend postgresql")
    counts = [int(n) for n in args.workers.split(",") if n]
    home = Path(tempfile.mkdtemp(prefix="tb-bench-"))
    dbs = Databases(args.backend, home)
    service = Service(dbs, home)
    results: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    try:
        key = admin_key(dbs.ours)
        service.start_api()
        tuneboard_per_trial(service, dbs, key, 5, 0)  # warm-up of the API
        for n in counts:
            ours = tuneboard_parallel(service, dbs, key, args.trials, n, home)
            theirs = optuna_parallel(dbs, args.trials, n, home)
            results[n] = (ours, theirs)
            print(f"{n} workers: Tuneboard {ours['per_trial_ms']:.1f} ms, {ours['xact']:.1f} "
                  f"xact; Optuna {theirs['per_trial_ms']:.1f} ms, {theirs['xact']:.1f} xact",
                  flush=True)
    finally:
        service.stop_all()
        dbs.drop()
    print_parallel(results, args.trials,
                   pgstats.pg_stat_statements_available(ADMIN_URL))


def print_parallel(results: dict[int, tuple[dict[str, Any], dict[str, Any]]], n_trials: int,
                   server_counts: bool) -> None:
    print(f"\nunder parallel load: no-op objective, {REPORTS} reports, median pruner, random "
          f"sampler, {n_trials} trials per side, PostgreSQL + Redis; per trial")
    head = (f"{'workers':>7} {'side':>9} {'wall ms':>8} {'xact':>6} {'stmts':>6} {'checkouts':>9} "
            f"{'rows':>6} {'CPU ms':>7}")
    print(head)
    for n, (ours, theirs) in results.items():
        for name, r in (("Tuneboard", ours), ("Optuna", theirs)):
            print(f"{n:>7} {name:>9} {r['per_trial_ms']:>8.1f} {r['xact']:>6.1f} "
                  f"{r['statements']:>6.1f} {r['checkouts']:>9.1f} {r['rows']:>6.0f} "
                  f"{r['cpu_ms']:>7.1f}")
        print(f"{n:>7} {'ratio':>9} {ours['per_trial_ms'] / theirs['per_trial_ms']:>8.2f} "
              f"{ours['xact'] / theirs['xact']:>6.2f} "
              f"{ours['statements'] / theirs['statements']:>6.2f} {'':>9} "
              f"{ours['rows'] / theirs['rows']:>6.2f} {ours['cpu_ms'] / theirs['cpu_ms']:>7.2f}")
    print("xact: pg_stat_database commits + rollbacks of the side's database (every process, "
          "pings included); stmts: statements the worker processes sent (SQLAlchemy events"
          + ("" if server_counts else "; pg_stat_statements is not preloaded on this server")
          + "); checkouts: connections taken from the pool (Tuneboard pings one idle > 1 s); "
          "rows: rows read and written (tup_*); CPU: the worker processes', while the trials ran")
    for n, (ours, theirs) in results.items():
        for name, r in (("Tuneboard", ours), ("Optuna", theirs)):
            print(f"\nwhere {name}'s transactions go, {n} workers, per trial "
                  "(transactions / checkouts / statements)")
            for label, c in r["breakdown"]:
                if max(c["transactions"], c["statements"], c["checkouts"]) >= 0.01:
                    print(f"  {c['transactions']:>6.2f} {c['checkouts']:>6.2f} "
                          f"{c['statements']:>6.2f}  {label}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", default="0,1000,10000",
                        help="finished trials already in the study, comma-separated")
    parser.add_argument("--repeats", type=int, default=1, help="Optuna runs (median)")
    parser.add_argument("--workers", default="",
                        help="under parallel load: worker counts, comma-separated (1,2,4,8)")
    parser.add_argument("--optuna-worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.optuna_worker:
        url, name, n, index = args.optuna_worker
        optuna_worker(url, name, int(n), int(index))
        return
    if args.workers:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        run_parallel(args)
        return
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
