"""Optuna over HTTP: ``study.ask()`` latency with TPE through ``RemoteStorage`` (a live uvicorn
server on Tuneboard's schema) against plain Optuna ask/tell on ``RDBStorage``, both on one
PostgreSQL server, at 0, 1k and 10k finished trials.

For each size, each side gets a fresh study seeded with the same finished trials (the remote
study is created through ``RemoteStorage``, so it belongs to the key's team, then filled in
bulk through ``SqlStorage``; Optuna's with bulk inserts into its tables). A fresh client then
asks (and tells) ``--asks`` trials; the first ask (cold: the client's cache is empty) is shown
apart, p50/p95 are of the others. The databases (tb_bench_*) are dropped at the end.

    python bench/remote_storage.py [--sizes 0,1000,10000] [--asks 20]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import time
import uuid
from pathlib import Path

import optuna
from _common import free_port, serve_api
from optuna.study import StudyDirection
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


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 \
        else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="0,1000,10000")
    parser.add_argument("--asks", type=int, default=20)
    parser.add_argument("--steps", type=int, default=5, help="intermediate values per trial")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    tag = uuid.uuid4().hex[:8]
    ours, theirs = f"tb_bench_remote_{tag}", f"tb_bench_optuna_{tag}"
    home = Path(f"/tmp/tb-bench-remote-{tag}")
    home.mkdir(parents=True)
    proc = None
    plain_dbs: list[str] = []
    try:
        tb_url = create_database(ours)
        upgrade(tb_url)
        with session_scope(tb_url) as session:
            _, api_key = teams.create_team(session, "bench")
        proc, base = start_server(tb_url, home)
        sql = SqlStorage(tb_url)
        rows = []
        for size in sizes:
            trials = finished_trials(size, args.steps)
            name = f"tpe-{size}"
            remote_id = RemoteStorage(base, api_key).create_new_study(
                [StudyDirection.MINIMIZE], name
            )
            for i in range(0, size, 2000):
                sql.add_trials(remote_id, trials[i : i + 2000])
            # seed_optuna numbers trial ids from 1: one database per size.
            optuna_url = create_database(f"{theirs}_{size}")
            plain_dbs.append(f"{theirs}_{size}")
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
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=20)
        drop_database(ours)
        for name in plain_dbs:
            drop_database(name)


if __name__ == "__main__":
    main()
