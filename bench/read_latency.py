"""Read latency at scale: study GET and leaderboards over HTTP at 100k trials / 5M metric rows.

Seeds a PostgreSQL database with one study of 100,000 finished trials (20 intermediate values
each) and 5,000,000 per-epoch metric rows, serves the API with uvicorn, and times real HTTP
requests (p50 / p95 / max). The peer, in the same run: plain Optuna RDBStorage on the same
server with 20,000 trials x 20 reports, answering the same questions the way an Optuna user
would (``best_trial``, a top-20 from ``get_trials``, ``trials_dataframe``).

    python bench/read_latency.py [--trials 100000] [--peer-trials 20000] [--requests 200]
"""

from __future__ import annotations

import argparse
import time
import uuid

import httpx
import optuna
import sqlalchemy as sa
from _common import percentiles, serve_api
from storage_cold_start import (
    STUDY,
    create_database,
    drop_database,
    finished_trials,
    seed_finished_study,
    seed_optuna,
)


def seed(url: str, n_trials: int) -> tuple[int, str]:
    study_id, key = seed_finished_study(url, "read-latency", n_trials, 20)
    with sa.create_engine(url).begin() as conn:
        # 5 metrics x 10 epochs per trial: 5M rows at 100k trials.
        conn.exec_driver_sql(
            "INSERT INTO trial_metrics (trial_id, step, name, value) "
            "SELECT t.id, s, 'metric_' || k, random() FROM trials t, "
            "generate_series(1, 10) s, generate_series(1, 5) k"
        )
        conn.exec_driver_sql("ANALYZE")
    return study_id, key


def timed(client: httpx.Client, path: str, n: int) -> dict[str, float]:
    for _ in range(5):
        client.get(path).raise_for_status()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        client.get(path).raise_for_status()
        samples.append((time.perf_counter() - start) * 1000)
    return percentiles(samples)


def peer(url: str, n_trials: int) -> dict[str, float]:
    seed_optuna(url, finished_trials(n_trials, 20))
    study = optuna.load_study(study_name=STUDY, storage=url)
    out = {}
    start = time.perf_counter()
    study.best_trial  # noqa: B018
    out["best_trial"] = time.perf_counter() - start
    start = time.perf_counter()
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    sorted(complete, key=lambda t: t.value)[:20]
    out["top20_get_trials"] = time.perf_counter() - start
    start = time.perf_counter()
    study.trials_dataframe()
    out["trials_dataframe"] = time.perf_counter() - start
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--peer-trials", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--port", type=int, default=8799)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ours, theirs = f"tb_bench_{uuid.uuid4().hex[:8]}", f"tb_bench_{uuid.uuid4().hex[:8]}"
    url = create_database(ours)
    try:
        start = time.perf_counter()
        study_id, key = seed(url, args.trials)
        print(f"seeded {args.trials} trials + metrics in {time.perf_counter() - start:.0f} s")
        proc = serve_api(url, args.port)
        try:
            headers = {"Authorization": f"Bearer {key}"}
            base = f"http://127.0.0.1:{args.port}/api/v1"
            with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                paths = [
                    f"/studies/{study_id}",
                    f"/studies/{study_id}/leaderboard?limit=20",
                    "/leaderboard?limit=20",
                    f"/studies/{study_id}/trials?limit=50",
                    f"/studies/{study_id}/trials/{args.trials // 2}/metrics",
                ]
                print(f"\nTuneboard over HTTP, {args.trials} trials, "
                      f"{args.trials * 50 / 1e6:.0f}M metric rows ({args.requests} requests)")
                print(f"{'GET':<48} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
                for path in paths:
                    r = timed(client, path, args.requests)
                    print(f"{path:<48} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['max']:>8.1f}")
        finally:
            proc.terminate()
            proc.wait()
        peer_url = create_database(theirs)
        result = peer(peer_url, args.peer_trials)
        print(f"\nplain Optuna RDBStorage, {args.peer_trials} trials x 20 reports (one call each)")
        for name, seconds in result.items():
            print(f"{name:<48} {seconds * 1000:>8.0f} ms")
    finally:
        drop_database(ours)
        drop_database(theirs)


if __name__ == "__main__":
    main()
