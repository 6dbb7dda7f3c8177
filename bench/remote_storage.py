"""Optuna over HTTP: ``RemoteStorage`` (a live uvicorn server on Tuneboard's schema) against
plain Optuna ``RDBStorage``, both on one PostgreSQL server, with TPE; one client, then several.

1. Ask latency at 0, 1k and 10k finished trials. For each size, each side gets a fresh study
   seeded with the same finished trials (the remote study is created through ``RemoteStorage``,
   so it belongs to the key's team, then filled in bulk through ``SqlStorage``; Optuna's with
   bulk inserts into its tables). A fresh client then asks (and tells) ``--asks`` trials; the
   first ask (cold: the client's cache is empty) is shown apart, p50/p95 are of the others.
2. Several clients on one study. For each N of ``--clients``, N fresh processes load one shared
   fresh study and run ``study.optimize`` of a no-op objective over the same space together,
   ``--parallel-trials`` trials in all (each its share, TPE seeded by the process's index),
   through ``RemoteStorage`` and then on ``RDBStorage``; trials per second over the span from
   the first process's start to the last one's end, and how busy the machine's CPUs were
   meanwhile (clients, server and database share them). Each study is then checked in its
   store: exactly the budget, every trial complete, no number twice.

The databases (tb_bench_*) are dropped at the end; ``--skip latency`` or ``--skip parallel``
runs the other part alone.

    python bench/remote_storage.py [--sizes 0,1000,10000] [--asks 20]
                                   [--clients 1,4] [--parallel-trials 200] [--skip PART]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import optuna
from _common import free_port, run_together, serve_api
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import TrialState
from storage_cold_start import (
    SPACE,
    STUDY,
    create_database,
    drop_database,
    finished_trials,
    seed_optuna,
)

from tuneboard.client.optuna import RemoteStorage
from tuneboard.db import session_scope
from tuneboard.db.migrate import upgrade
from tuneboard.optimization.storage import SqlStorage
from tuneboard.teams import service as teams


def start_server(url: str, home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {"TUNEBOARD_HOME": str(home), "TUNEBOARD_ENVIRONMENT": "test",
           "TUNEBOARD_BROKER_URL": f"sqla+sqlite:///{home / 'broker.db'}"}
    return serve_api(url, port, env), f"http://127.0.0.1:{port}"


def time_asks(study: optuna.Study, asks: int) -> tuple[float, list[float]]:
    """Seconds of the first ask and of each later one; each trial is told at once."""
    rng = random.Random(1)
    times = []
    for _ in range(asks):
        start = time.perf_counter()
        trial = study.ask(SPACE)
        times.append(time.perf_counter() - start)
        study.tell(trial, rng.random())
    return times[0], times[1:]


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 \
        else values[0]


def latency(args: argparse.Namespace, base: str, api_key: str, sql: SqlStorage,
            create_plain: Callable[[str], str]) -> None:
    rows = []
    for size in (int(s) for s in args.sizes.split(",") if s):
        trials = finished_trials(size, args.steps)
        name = f"tpe-{size}"
        remote_id = RemoteStorage(base, api_key).create_new_study([StudyDirection.MINIMIZE], name)
        for i in range(0, size, 2000):
            sql.add_trials(remote_id, trials[i : i + 2000])
        # seed_optuna numbers trial ids from 1: one database per size.
        optuna_url = create_plain(str(size))
        if size:
            seed_optuna(optuna_url, trials)
        else:
            optuna.storages.RDBStorage(optuna_url).create_new_study(
                [StudyDirection.MINIMIZE], STUDY
            )

        remote_study = optuna.load_study(
            study_name=name, storage=RemoteStorage(base, api_key),
            sampler=optuna.samplers.TPESampler(seed=0),
        )
        plain_study = optuna.load_study(
            study_name=STUDY, storage=optuna.storages.RDBStorage(optuna_url),
            sampler=optuna.samplers.TPESampler(seed=0),
        )
        r_first, r_rest = time_asks(remote_study, args.asks)
        p_first, p_rest = time_asks(plain_study, args.asks)
        rows.append((size, r_first, r_rest, p_first, p_rest))
        print(f"  {size} finished trials measured", flush=True)

    print(f"\nask latency, TPE, {args.asks - 1} asks after the first (ms)")
    print(f"{'finished':>9} | {'remote p50':>10} {'p95':>8} {'first':>8} | "
          f"{'optuna p50':>10} {'p95':>8} {'first':>8} | {'p50 ratio':>9} {'p95 ratio':>9}")
    for size, r_first, r_rest, p_first, p_rest in rows:
        r50, r95, o50, o95 = (pct(r_rest, 50), pct(r_rest, 95), pct(p_rest, 50),
                              pct(p_rest, 95))
        print(f"{size:>9} | {r50 * 1e3:>10.1f} {r95 * 1e3:>8.1f} {r_first * 1e3:>8.1f} | "
              f"{o50 * 1e3:>10.1f} {o95 * 1e3:>8.1f} {p_first * 1e3:>8.1f} | "
              f"{r50 / o50:>9.2f} {r95 / o95:>9.2f}")
    print("ratio: RemoteStorage over plain RDBStorage (below 1: remote is faster)")


# --- Several clients on one study -------------------------------------------------------------


def noop(trial: optuna.Trial) -> float:
    """Every parameter of ``SPACE`` sampled, nothing computed."""
    for name, dist in SPACE.items():
        if isinstance(dist, CategoricalDistribution):
            trial.suggest_categorical(name, dist.choices)
        elif isinstance(dist, IntDistribution):
            trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
        elif isinstance(dist, FloatDistribution):
            trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
    return float(trial.params["dropout"])


def client(storage: optuna.storages.BaseStorage | str, name: str, n_trials: int,
           index: int) -> Callable[[], object]:
    """One of the N processes: the study loaded; its run, ``n_trials`` trials of ``noop``."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=storage,
                              sampler=optuna.samplers.TPESampler(seed=index))
    return lambda: study.optimize(noop, n_trials=n_trials)


def checked(storage: optuna.storages.BaseStorage, study_id: int, budget: int) -> str:
    trials = storage.get_all_trials(study_id, deepcopy=False)
    numbers = {t.number for t in trials}
    ok = (len(trials) == len(numbers) == budget
          and all(t.state == TrialState.COMPLETE for t in trials))
    return "ok" if ok else f"MISMATCH: {len(trials)} trials, {len(numbers)} numbers"


def parallel(args: argparse.Namespace, base: str, api_key: str, sql: SqlStorage,
             create_plain: Callable[[str], str]) -> None:
    budget = args.parallel_trials
    optuna_url = create_plain("parallel")
    plain = optuna.storages.RDBStorage(optuna_url)
    rows = []
    for n in (int(c) for c in args.clients.split(",") if c):
        shares = [budget // n + (i < budget % n) for i in range(n)]
        name = f"parallel-{n}"
        remote_id = RemoteStorage(base, api_key).create_new_study([StudyDirection.MINIMIZE], name)
        remote = run_together(client, [(RemoteStorage(base, api_key), name, share, i)
                                       for i, share in enumerate(shares)])
        plain_id = plain.create_new_study([StudyDirection.MINIMIZE], name)
        theirs = run_together(client, [(optuna_url, name, share, i)
                                       for i, share in enumerate(shares)])
        rows.append((n, remote, checked(sql, remote_id, budget), theirs,
                     checked(plain, plain_id, budget)))
        print(f"  {n} client(s) measured", flush=True)
    plain.engine.dispose()

    print(f"\nseveral clients on one study: study.optimize of a no-op objective, TPE, {budget} "
          f"trials in all per side ({os.cpu_count()} CPUs, 1 API process)")
    print(f"{'clients':>7} | {'remote trials/s':>15} {'CPUs busy':>9} {'store':>5} | "
          f"{'optuna trials/s':>15} {'CPUs busy':>9} {'store':>5} | {'ratio':>5}")
    for n, remote, r_check, theirs, p_check in rows:
        r_rate, p_rate = budget / remote.wall_s, budget / theirs.wall_s
        print(f"{n:>7} | {r_rate:>15.1f} {100 * remote.busy:>8.0f}% {r_check:>5} | "
              f"{p_rate:>15.1f} {100 * theirs.busy:>8.0f}% {p_check:>5} | "
              f"{r_rate / p_rate:>5.2f}")
    print("ratio: RemoteStorage's trials/s over plain RDBStorage's (above 1: remote is faster); "
          "store: the budget, all complete, no number twice")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="0,1000,10000")
    parser.add_argument("--asks", type=int, default=20)
    parser.add_argument("--steps", type=int, default=5, help="intermediate values per trial")
    parser.add_argument("--clients", default="1,4", help="client processes, comma-separated")
    parser.add_argument("--parallel-trials", type=int, default=200,
                        help="trials in all per side and client count")
    parser.add_argument("--skip", choices=("latency", "parallel"), action="append", default=[])
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    tag = uuid.uuid4().hex[:8]
    ours = f"tb_bench_remote_{tag}"
    home = Path(f"/tmp/tb-bench-remote-{tag}")
    home.mkdir(parents=True)
    proc = None
    plain_dbs: list[str] = []

    def create_plain(suffix: str) -> str:
        plain_dbs.append(f"tb_bench_optuna_{tag}_{suffix}")
        return create_database(plain_dbs[-1])

    try:
        tb_url = create_database(ours)
        upgrade(tb_url)
        with session_scope(tb_url) as session:
            _, api_key = teams.create_team(session, "bench")
        proc, base = start_server(tb_url, home)
        sql = SqlStorage(tb_url)
        for part, measure in (("latency", latency), ("parallel", parallel)):
            if part not in args.skip:
                measure(args, base, api_key, sql, create_plain)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=20)
        drop_database(ours)
        for name in plain_dbs:
            drop_database(name)


if __name__ == "__main__":
    main()
