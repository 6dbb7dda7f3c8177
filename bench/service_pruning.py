"""The pruning task through the whole service against in-process Optuna, in the same run.

The task of ``bench/pruning.py`` (an MLP on digits, 40 trials of at most 30 epochs, TPE and
Hyperband): once as plain ``study.optimize`` in this process (the peer), once submitted over
HTTP to the API with one Celery worker on the embedded default (SQLite + SQLAlchemy broker),
or PostgreSQL + Redis. Prints both wall times, epochs and best values, and their ratio
(the target: the service within 1.5x of in-process Optuna).

    python bench/service_pruning.py [--backend sqlite|postgresql] [--trials 40] [--epochs 30]
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import optuna
import torch
from bookkeeping import Databases, Service, admin_key
from pruning import SPEC, run, spec_with


def service_run(backend: str, raw: dict[str, Any], home: Path) -> dict[str, float]:
    dbs = Databases(backend, home)
    service = Service(dbs, home)
    try:
        key = admin_key(dbs.ours)
        service.start_api()
        service.start_worker()
        auth = {"Authorization": f"Bearer {key}"}
        start = time.perf_counter()
        created = httpx.post(f"{service.url}/api/v1/studies", json=raw, headers=auth)
        created.raise_for_status()
        study_id = created.json()["id"]
        while True:
            study = httpx.get(f"{service.url}/api/v1/studies/{study_id}", headers=auth).json()
            if study["state"] not in ("queued", "running"):
                break
            time.sleep(0.2)
        wall = time.perf_counter() - start
        trials = httpx.get(f"{service.url}/api/v1/studies/{study_id}/trials?limit=500",
                           headers=auth).json()["items"]
        return {
            "epochs": sum(t["epochs_run"] for t in trials),
            "best": study["best_trial"]["value"],
            "wall_s": wall,
            "pruned": study["counts"]["pruned"],
            "state": study["state"] == "completed",
        }
    finally:
        service.stop_all()
        dbs.drop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--pruner", default="hyperband")
    args = parser.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    raw = copy.deepcopy(SPEC)
    raw["objective"]["max_epochs"] = args.epochs
    raw["budget"]["n_trials"] = args.trials
    raw["pruner"] = {"type": args.pruner}
    with tempfile.TemporaryDirectory() as tmp:
        local = run(spec_with(args.trials, args.epochs, args.pruner), Path(tmp) / "local")
        served = service_run(args.backend, raw, Path(tmp))
    print(f"{'':>26} {'epochs':>8} {'best val_acc':>13} {'pruned':>7} {'wall s':>8}")
    for name, r in (("in-process Optuna", local), (f"Tuneboard ({args.backend})", served)):
        print(f"{name:>26} {r['epochs']:>8.0f} {r['best']:>13.4f} {r['pruned']:>7.0f} "
              f"{r['wall_s']:>8.1f}")
    print(json.dumps({"wall_ratio": served["wall_s"] / local["wall_s"],
                      "completed": bool(served["state"])}))


if __name__ == "__main__":
    main()
