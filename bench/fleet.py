"""A fleet on one database: N workers running a sleepy objective against one PostgreSQL.

Each simulated worker is a pool process of one Tuneboard worker (what ``tuneboard worker
--concurrency N`` runs), its objective sleeps ``--trial-s`` seconds in 20 steps and reports at
each (the host side of a GPU trial: it waits on the device). The study has ``max_parallel: N``
and, per N, enough trials for ``--rounds`` rounds. Measured while the trials run: trials per
second, PostgreSQL transactions per second (``pg_stat_database`` of the bench database) and the
CPU seconds all PostgreSQL processes of this machine spent per second (``/proc``), from which
the database's cost per trial follows; the README turns that into how many GPU workers one
PostgreSQL serves at 10 s and 60 s trials.

    python bench/fleet.py [--workers 2,4,8,16] [--trial-s 1.0] [--rounds 6]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import _pgstats as pgstats
import httpx
from bookkeeping import ADMIN_URL, REPORTS, Databases, Service, admin_key, poll_until_finished


def fleet_spec(workers: int, n_trials: int, trial_s: float) -> dict[str, Any]:
    return {
        "name": f"fleet-{workers}",
        "objective": {"entrypoint": "bench-sleepy", "metric": "loss", "direction": "minimize"},
        "search_space": {"x": {"type": "float", "low": -5.0, "high": 5.0}},
        "fixed": {"trial_s": trial_s},
        "sampler": {"type": "random", "seed": 1},
        "pruner": {"type": "none"},
        "budget": {"n_trials": n_trials, "max_parallel": workers},
    }


def measure(service: Service, dbs: Databases, key: str, workers: int, trial_s: float,
            rounds: int) -> dict[str, float]:
    service.stop("worker")
    service.start_worker(concurrency=workers)
    time.sleep(1.0)
    n_trials = workers * rounds
    before = pgstats.settled(ADMIN_URL, dbs.ours_name)
    pg_cpu = pgstats.postgres_cpu_s()
    worker_cpu = pgstats.group_cpu_s(service.procs["worker"].pid)
    started = time.perf_counter()
    created = httpx.post(f"{service.url}/api/v1/studies",
                         json=fleet_spec(workers, n_trials, trial_s),
                         headers={"Authorization": f"Bearer {key}"})
    created.raise_for_status()
    poll_until_finished(dbs.ours, int(created.json()["id"]))
    wall_s = time.perf_counter() - started
    pg_cpu = pgstats.postgres_cpu_s() - pg_cpu
    worker_cpu = pgstats.group_cpu_s(service.procs["worker"].pid) - worker_cpu
    service.stop("worker")
    time.sleep(max(0.0, 11.0 - wall_s))  # the API's backend reports within 10 s of idling
    xact = pgstats.transactions(pgstats.delta(pgstats.settled(ADMIN_URL, dbs.ours_name), before))
    return {
        "trials_s": n_trials / wall_s, "xact_s": xact / wall_s, "pg_cpu": pg_cpu / wall_s,
        "xact_trial": xact / n_trials, "pg_cpu_ms_trial": 1000 * pg_cpu / n_trials,
        "worker_cpu_ms_trial": 1000 * worker_cpu / n_trials,
        "efficiency": n_trials * trial_s / (wall_s * workers),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="2,4,8,16")
    parser.add_argument("--trial-s", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=6, help="trials per worker")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="tb-fleet-"))
    dbs = Databases("postgresql", home)
    service = Service(dbs, home)
    results: dict[int, dict[str, float]] = {}
    try:
        key = admin_key(dbs.ours)
        service.start_api()
        for n in (int(v) for v in args.workers.split(",") if v):
            results[n] = measure(service, dbs, key, n, args.trial_s, args.rounds)
            print(n, {k: round(v, 3) for k, v in results[n].items()}, flush=True)
    finally:
        service.stop_all()
        dbs.drop()

    cores = os.cpu_count() or 1
    print(f"\nfleet: {REPORTS} reports per trial of {args.trial_s:g} s, {args.rounds} trials per "
          f"worker, one PostgreSQL + Redis on this machine ({cores} cores, shared)")
    print(f"{'workers':>7} {'trials/s':>9} {'xact/s':>8} {'PG CPU':>7} {'xact/trial':>11} "
          f"{'PG CPU ms/trial':>16} {'worker CPU ms/trial':>20} {'busy':>5}")
    for n, r in results.items():
        print(f"{n:>7} {r['trials_s']:>9.2f} {r['xact_s']:>8.0f} {r['pg_cpu']:>7.3f} "
              f"{r['xact_trial']:>11.1f} {r['pg_cpu_ms_trial']:>16.1f} "
              f"{r['worker_cpu_ms_trial']:>20.1f} {r['efficiency']:>5.2f}")
    last = results[max(results)]
    for length in (10.0, 60.0):
        # One core of PostgreSQL per ``pg_cpu_ms_trial`` ms of work per trial of ``length`` s.
        per_core = 1000 * length / last["pg_cpu_ms_trial"]
        print(f"trials of {length:g} s: one PostgreSQL core serves ~{per_core:,.0f} workers "
              f"({last['xact_trial'] / length:.2f} transactions/s each)")
    print("PG CPU: CPU seconds of all postgres processes per second of wall time; busy: "
          "sleeping-objective time over workers x wall (1.00: no overhead)")


if __name__ == "__main__":
    main()
