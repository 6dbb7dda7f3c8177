"""External trials over HTTP: native ask and report latency, and many clients on one study.

1. Latency. For each size (0, 1k, 10k finished trials) an external study is created through the
   API and seeded with that many finished trials (20 intermediate values each, through
   ``SqlStorage``); one client then asks, reports one step and tells ``--asks`` trials, and the
   ask and the report are timed (p50 / p95; the first ask, which warms the server's cache of the
   study, is left out). The peer, in the same run and on the same PostgreSQL server: plain
   Optuna ``study.ask()`` + ``trial.report()`` on ``RDBStorage`` seeded with the same trials.
2. Throughput. One study of ``--budget`` no-op trials, run by 1 client process, then another by
   ``--clients`` processes (ask, report one step, tell; until the study has nothing left).
   On both sides every process has started and imported what it needs before the clock starts
   (``run_together``): 16 processes' imports would otherwise eat the CPUs they are timed on.
   Trials per second for each, and how busy the machine's CPUs were meanwhile (all of them,
   from ``/proc/stat``: clients, servers and database share them, so where one client already
   keeps them busy, more clients cannot go faster); then the store is checked: no duplicate
   trial numbers, exactly the budget finished, one report stored per trial. The peer, in the
   same run: as many processes of plain Optuna (ask, report, ``should_prune``, tell) on one
   ``RDBStorage`` study on the same server, the budget shared out between them.

The API is live uvicorn servers (``--servers`` processes, one port each; latency uses the
first) on a fresh PostgreSQL database: ``uvicorn --workers N`` added about 45 ms to every POST
here, separate processes on their own ports, as behind a load balancer, do not. The databases
(tb_bench_*) are dropped at the end.

    python bench/external.py [--sizes 0,1000,10000] [--asks 50] [--sampler random|tpe]
                             [--budget 400] [--clients 16] [--servers 4]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import optuna
import sqlalchemy as sa
from _common import free_port, percentiles, run_together, serve_api
from storage_cold_start import (
    SPACE,
    create_database,
    drop_database,
    finished_trials,
    seed_optuna,
)

from tuneboard.client._sdk import no_delay
from tuneboard.db import session_scope
from tuneboard.db.migrate import upgrade
from tuneboard.optimization.storage import SqlStorage
from tuneboard.teams import create_team

SEARCH_SPACE = {
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "dropout": {"type": "float", "low": 0.0, "high": 0.5},
    "hidden": {"type": "int", "low": 32, "high": 512, "step": 32},
    "optimizer": {"type": "categorical", "choices": ["sgd", "adam", "adamw"]},
}


def spec(name: str, sampler: str, n_trials: int, max_parallel: int) -> dict[str, Any]:
    return {
        "name": name,
        "objective": {"external": True, "metric": "loss", "direction": "minimize"},
        "search_space": SEARCH_SPACE,
        "sampler": {"type": sampler, "seed": 0},
        "pruner": {"type": "median"},
        "budget": {"n_trials": n_trials, "max_parallel": max_parallel},
    }


def create(client: httpx.Client, body: dict[str, Any]) -> int:
    response = client.post("/api/v1/studies", json=body)
    response.raise_for_status()
    return int(response.json()["id"])


def one_trial(client: httpx.Client, study_id: int) -> tuple[float, float] | None:
    """Ask, report one step and tell; (ask ms, report ms), or None when the study is done."""
    base = f"/api/v1/studies/{study_id}/trials"
    while True:
        start = time.perf_counter()
        asked = client.post(f"{base}/ask")
        ask_ms = (time.perf_counter() - start) * 1000
        if asked.status_code != 409:
            break
        if "Retry-After" not in asked.headers:
            return None
        time.sleep(0.05)  # a slot frees as soon as a client tells; no need to wait seconds
    asked.raise_for_status()
    number = asked.json()["number"]
    start = time.perf_counter()
    client.post(f"{base}/{number}/report",
                json={"step": 0, "metrics": {"loss": 0.5}}).raise_for_status()
    report_ms = (time.perf_counter() - start) * 1000
    client.post(f"{base}/{number}/tell",
                json={"state": "complete", "values": 0.5}).raise_for_status()
    return ask_ms, report_ms


def latency(client: httpx.Client, url: str, size: int, asks: int, sampler: str) -> dict[str, Any]:
    study_id = create(client, spec(f"latency-{size}", sampler, asks + 1, 1))
    with session_scope(url) as session:
        name = session.execute(sa.text("SELECT optuna_name FROM studies WHERE id = :i"),
                               {"i": study_id}).scalar_one()
    storage = SqlStorage(url)
    trials = finished_trials(size, 20)
    for i in range(0, len(trials), 2000):
        storage.add_trials(storage.get_study_id_from_name(name), trials[i:i + 2000])
    one_trial(client, study_id)  # the server's first read of the study: its cache warms
    ask_ms, report_ms = [], []
    for _ in range(asks):
        timed = one_trial(client, study_id)
        assert timed is not None
        ask_ms.append(timed[0])
        report_ms.append(timed[1])
    return {"ask": percentiles(ask_ms), "report": percentiles(report_ms)}


def optuna_latency(size: int, asks: int, sampler: str) -> dict[str, Any]:
    name = f"tb_bench_{uuid.uuid4().hex[:10]}"
    url = create_database(name)
    try:
        seed_optuna(url, finished_trials(size, 20))
        sampler_obj = (optuna.samplers.TPESampler(seed=0) if sampler == "tpe"
                       else optuna.samplers.RandomSampler(seed=0))
        study = optuna.load_study(study_name="cold-start", storage=url, sampler=sampler_obj,
                                  pruner=optuna.pruners.MedianPruner())
        ask_ms, report_ms = [], []
        for i in range(asks + 1):
            start = time.perf_counter()
            trial = study.ask(SPACE)
            asked = (time.perf_counter() - start) * 1000
            start = time.perf_counter()
            trial.report(0.5, 0)
            trial.should_prune()
            reported = (time.perf_counter() - start) * 1000
            study.tell(trial, 0.5)
            if i:
                ask_ms.append(asked)
                report_ms.append(reported)
        return {"ask": percentiles(ask_ms), "report": percentiles(report_ms)}
    finally:
        drop_database(name)


def _our_client(base_url: str, key: str, study_id: int) -> Callable[[], object]:
    """One of our client processes: its HTTP client opened; its run, ask, one report and tell
    until the study has nothing left to give."""
    client = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"},
                          timeout=60, transport=no_delay())

    def run() -> None:
        with client:
            while one_trial(client, study_id) is not None:
                pass

    return run


def throughput(base_urls: list[str], key: str, client: httpx.Client, url: str, budget: int,
               clients: int, sampler: str) -> dict[str, Any]:
    study_id = create(client, spec(f"throughput-{clients}", sampler, budget, max(16, clients)))
    together = run_together(_our_client, [(base_urls[i % len(base_urls)], key, study_id)
                                          for i in range(clients)])
    wall, busy = together.wall_s, together.busy
    with sa.create_engine(url).connect() as conn:
        row = conn.execute(sa.text(
            "SELECT count(*), count(DISTINCT number), "
            "count(*) FILTER (WHERE state = 'complete'), "
            "(SELECT count(*) FROM trial_metrics m JOIN trials t ON t.id = m.trial_id "
            " WHERE t.study_id = :s) FROM trials WHERE study_id = :s"), {"s": study_id}).one()
        state = conn.execute(sa.text("SELECT state FROM studies WHERE id = :s"),
                             {"s": study_id}).scalar_one()
    trials, distinct, complete, reports = row
    return {"clients": clients, "trials_per_s": complete / wall, "wall_s": wall, "busy": busy,
            "trials": trials, "distinct_numbers": distinct, "complete": complete,
            "reports": reports, "study_state": state,
            "ok": trials == distinct == complete == reports == budget
            and state == "completed"}


def _optuna_client(url: str, name: str, n_trials: int, sampler: str,
                   index: int) -> Callable[[], object]:
    """One of the peer's processes: the study loaded; its run, ``n_trials`` of ask, one report
    and the pruner's answer, tell (what each of our clients does over HTTP)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name=name, storage=url, pruner=optuna.pruners.MedianPruner(),
        sampler=(optuna.samplers.TPESampler(seed=index) if sampler == "tpe"
                 else optuna.samplers.RandomSampler(seed=index)))

    def run() -> None:
        for _ in range(n_trials):
            trial = study.ask(SPACE)
            trial.report(0.5, 0)
            trial.should_prune()
            study.tell(trial, 0.5)

    return run


def optuna_throughput(budget: int, clients: int, sampler: str) -> dict[str, Any]:
    """The peer of ``throughput``: ``clients`` processes on one ``RDBStorage`` study on the same
    server, the budget shared out between them."""
    name = f"tb_bench_{uuid.uuid4().hex[:10]}"
    url = create_database(name)
    try:
        storage = optuna.storages.RDBStorage(url)
        study_id = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "throughput")
        shares = [budget // clients + (i < budget % clients) for i in range(clients)]
        together = run_together(_optuna_client, [(url, "throughput", share, sampler, i)
                                                 for i, share in enumerate(shares)])
        trials = storage.get_all_trials(study_id, deepcopy=False)
        ok = (len(trials) == len({t.number for t in trials}) == budget
              and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials))
        storage.engine.dispose()
        return {"trials_per_s": budget / together.wall_s, "busy": together.busy, "ok": ok}
    finally:
        drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="0,1000,10000")
    parser.add_argument("--asks", type=int, default=50)
    parser.add_argument("--sampler", default="random", choices=("random", "tpe"))
    parser.add_argument("--budget", type=int, default=400)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--servers", type=int, default=4,
                        help="API processes (each on its own port) the clients spread over")
    args = parser.parse_args()

    name = f"tb_bench_{uuid.uuid4().hex[:10]}"
    url = create_database(name)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        upgrade(url)
        with session_scope(url) as session:
            _, key = create_team(session, "bench")
        ports = [free_port() for _ in range(args.servers)]
        procs = [serve_api(url, port) for port in ports]
        base_urls = [f"http://127.0.0.1:{port}" for port in ports]
        base_url = base_urls[0]
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"},
                          timeout=60, transport=no_delay()) as client:
            print(f"latency, ms ({args.sampler} sampler; native: HTTP to a live server)")
            print(f"{'finished':>9} | {'native ask p50/p95':>19} | {'report p50/p95':>15} | "
                  f"{'Optuna ask p50/p95':>19} | {'report p50/p95':>15}")
            for size in (int(s) for s in args.sizes.split(",")):
                ours = latency(client, url, size, args.asks, args.sampler)
                theirs = optuna_latency(size, args.asks, args.sampler)
                print(f"{size:>9} | {_pair(ours['ask']):>19} | {_pair(ours['report']):>15} | "
                      f"{_pair(theirs['ask']):>19} | {_pair(theirs['report']):>15}", flush=True)
            print(f"\nthroughput: {args.budget} no-op trials (ask, 1 report, tell) on one study")
            one = throughput(base_urls, key, client, url, args.budget, 1, args.sampler)
            many = throughput(base_urls, key, client, url, args.budget, args.clients,
                              args.sampler)
            for result in (one, many):
                print(f"{result['clients']:>3} client(s): {result['trials_per_s']:7.1f} trials/s "
                      f"({result['wall_s']:.1f} s, CPUs {100 * result['busy']:.0f}% busy); "
                      f"trials {result['trials']}, distinct numbers "
                      f"{result['distinct_numbers']}, complete {result['complete']}, reports "
                      f"{result['reports']}, study {result['study_state']}: "
                      f"{'ok' if result['ok'] else 'MISMATCH'}")
            print(f"speed-up: {many['trials_per_s'] / one['trials_per_s']:.1f}x "
                  f"({os.cpu_count()} CPUs, {args.servers} API processes)")
            print("\nthe peer: as many processes of plain Optuna ask, report, should_prune, tell "
                  "on one RDBStorage study on the same server")
            for ours in (one, many):
                theirs = optuna_throughput(args.budget, ours["clients"], args.sampler)
                print(f"{ours['clients']:>3} process(es): {theirs['trials_per_s']:7.1f} trials/s "
                      f"(CPUs {100 * theirs['busy']:.0f}% busy; "
                      f"{'ok' if theirs['ok'] else 'MISMATCH'}); ours / theirs "
                      f"{ours['trials_per_s'] / theirs['trials_per_s']:.2f}", flush=True)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        drop_database(name)


def _pair(p: dict[str, float]) -> str:
    return f"{p['p50']:.1f} / {p['p95']:.1f}"


if __name__ == "__main__":
    main()
