"""The pruning task through the whole service against in-process Optuna, in the same run.

The task of ``bench/pruning.py`` (an MLP on digits, 40 trials of at most 30 epochs, TPE and
Hyperband): once submitted over HTTP to the API with one Celery worker on the embedded default
(SQLite + SQLAlchemy broker) or PostgreSQL + Redis, then as plain ``study.optimize`` in this
process (the peer, an in-memory study) that replays the service's trials: the same study name
(Hyperband's brackets hash it), each trial's parameters enqueued (``enqueue_trial``) and its
training seeded with the service trial's seed. Both sides then train the same trials and prune
them alike, so the wall ratio is the service's overhead alone (left out of the peer: TPE's own
sampling, a few milliseconds a trial). Prints both wall times, epochs and best values and their
ratio (the target: the service within 1.2x of in-process Optuna).

Then where a trial's time went, per trial, on both sides: the built-in trainer's spans
(``TrialContext.span``: data loading, model build, the epochs, the reports with the pruner's
decision, checkpoint writes, waiting for the reports' commit before a checkpoint), and on the
service's side the worker's spans around the objective (claim, ask, closing the reports,
finish: the outcome, verdict and dispatch in one transaction); the time between one trial's end
and the next one's start (the broker, the task's start, the HTTP create) is the rest.

    python bench/service_pruning.py [--backend sqlite|postgresql] [--trials 40] [--epochs 30]
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import optuna
import sqlalchemy as sa
import torch
from _common import trial_context
from bookkeeping import Databases, Service, admin_key
from pruning import SPEC, spec_with

from tuneboard.objective import TrialPruned
from tuneboard.optimization import make_pruner, make_sampler
from tuneboard.spec import StudySpec
from workers.objectives import load_objective

# The trainer's spans, in the order a trial runs them; the worker logs them as objective.<name>.
TRAINER_SPANS = ("data", "model", "resume", "epochs", "report", "checkpoint", "report_flush")


def service_run(
    backend: str, raw: dict[str, Any], home: Path, keep_log: Path | None = None
) -> dict[str, Any]:
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
        trials.sort(key=lambda t: t["number"])
        worker_log = service.logs["worker"].read_text(errors="replace")
        if keep_log is not None:
            keep_log.write_text(worker_log)
        spans = trial_spans(worker_log)
        engine = sa.create_engine(dbs.ours)
        with engine.connect() as conn:
            optuna_name = conn.execute(sa.text("SELECT optuna_name FROM studies WHERE id = :id"),
                                       {"id": study_id}).scalar_one()
        engine.dispose()
        return {
            "spans": spans,
            "n_trials": len(trials),
            "epochs": sum(t["epochs_run"] for t in trials),
            "best": study["best_trial"]["value"],
            "wall_s": wall,
            "pruned": study["counts"]["pruned"],
            "state": study["state"] == "completed",
            "optuna_name": optuna_name,
            "replay": [(t["params"], int(t["seed"] or 0)) for t in trials],
        }
    finally:
        service.stop_all()
        dbs.drop()


def local_run(
    spec: StudySpec, study_name: str, replay: list[tuple[dict[str, Any], int]], workdir: Path
) -> dict[str, Any]:
    """Plain ``study.optimize`` in memory, the built-in trainer as the objective, on the
    ``replay``'s parameters and seeds in order, summing the trainer's spans over the trials."""
    objective_fn = load_objective(spec.objective.model_dump(mode="json"))
    metric = spec.metrics[0]
    epochs = 0
    spans: dict[str, float] = {}

    def objective(trial: optuna.Trial) -> float:
        def reporter(step: int, metrics: Any) -> None:
            nonlocal epochs
            epochs += 1
            trial.report(float(metrics[metric]), step)
            if trial.should_prune():
                raise TrialPruned(f"pruned at epoch {step}")

        ctx = trial_context(spec, trial, workdir, reporter)
        ctx.seed = replay[trial.number][1]
        random.seed(ctx.seed)  # as the worker seeds a trial
        np.random.seed(ctx.seed % 2**32)
        torch.manual_seed(ctx.seed)
        started = time.perf_counter()
        try:
            result = objective_fn(ctx)
        except TrialPruned as exc:
            raise optuna.TrialPruned(str(exc)) from exc
        finally:
            spans["objective"] = spans.get("objective", 0.0) + time.perf_counter() - started
            for name, seconds in ctx.spans.items():
                spans[f"objective.{name}"] = spans.get(f"objective.{name}", 0.0) + seconds
        return float(result[metric] if isinstance(result, dict) else result)

    study = optuna.create_study(
        study_name=study_name, direction=spec.directions[0],
        sampler=make_sampler(spec.sampler, spec.search_space, n_objectives=1),
        pruner=make_pruner(spec.pruner, max_steps=spec.objective.max_epochs),
    )
    for params, _ in replay:
        study.enqueue_trial(params)
    start = time.perf_counter()
    study.optimize(objective, n_trials=len(replay))
    wall = time.perf_counter() - start
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return {"epochs": epochs, "best": study.best_value, "wall_s": wall, "pruned": pruned,
            "spans": spans, "n_trials": len(study.trials)}


SPANS = re.compile(r"trial id \d+ took (.*)$", re.MULTILINE)


def trial_spans(log: str) -> dict[str, float]:
    """Each span's total over the trials, in seconds, from the worker's log lines."""
    totals: dict[str, float] = {}
    for line in SPANS.findall(log):
        for part in line.split():
            name, ms = part.split("=")
            totals[name] = totals.get(name, 0.0) + float(ms.removesuffix("ms")) / 1000
    return totals


def _rows(result: dict[str, Any]) -> dict[str, float]:
    """Seconds per trial of each part of a whole run, the trainer's parts first; ``objective``
    less the trainer's spans is the trainer's own rest (its config, seeding, the result)."""
    spans: dict[str, float] = result["spans"]
    n = max(1, result["n_trials"])
    rows = {name: spans.get(f"objective.{name}", 0.0) / n for name in TRAINER_SPANS}
    inner = sum(v for k, v in spans.items() if k.startswith("objective."))
    rows["trainer, other"] = (spans.get("objective", 0.0) - inner) / n
    for name, total in spans.items():
        if name != "objective" and not name.startswith("objective."):
            rows[name] = total / n
    covered = sum(v for k, v in spans.items() if not k.startswith("objective."))
    rows["between trials"] = (result["wall_s"] - covered) / n
    return rows


def print_spans(served: dict[str, Any], local: dict[str, Any]) -> None:
    ours, theirs = _rows(served), _rows(local)
    print(f"\nper trial, ms ({served['n_trials']} trials on the service, "
          f"{local['n_trials']} in process)")
    print(f"  {'':>16} {'service':>9} {'in-process':>11}")
    for name in dict.fromkeys([*ours, *theirs]):
        print(f"  {name:>16} {1000 * ours.get(name, 0.0):>9.1f} "
              f"{1000 * theirs.get(name, 0.0):>11.1f}")
    print(f"  {'whole trial':>16} {1000 * served['wall_s'] / max(1, served['n_trials']):>9.1f} "
          f"{1000 * local['wall_s'] / max(1, local['n_trials']):>11.1f}")
    print("report: the reporter's call with the pruner's decision; report_flush: waiting for the "
          "reports' commit before a checkpoint; between trials: broker, task start, HTTP create "
          "and polling (the service), Optuna's ask and tell (in process)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--pruner", default="hyperband")
    parser.add_argument("--worker-log", type=Path, help="keep the worker's log here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    raw = copy.deepcopy(SPEC)
    raw["objective"]["max_epochs"] = args.epochs
    raw["budget"]["n_trials"] = args.trials
    raw["pruner"] = {"type": args.pruner}
    with tempfile.TemporaryDirectory() as tmp:
        served = service_run(args.backend, raw, Path(tmp), args.worker_log)
        local = local_run(spec_with(args.trials, args.epochs, args.pruner),
                          served["optuna_name"], served["replay"], Path(tmp) / "local")
    print(f"{'':>26} {'epochs':>8} {'best val_acc':>13} {'pruned':>7} {'wall s':>8} "
          f"{'ms/epoch':>9}")
    for name, r in (("in-process Optuna", local), (f"Tuneboard ({args.backend})", served)):
        print(f"{name:>26} {r['epochs']:>8.0f} {r['best']:>13.4f} {r['pruned']:>7.0f} "
              f"{r['wall_s']:>8.1f} {1000 * r['wall_s'] / max(1, r['epochs']):>9.1f}")
    print_spans(served, local)
    per_epoch = (served["wall_s"] / max(1, served["epochs"])) / (
        local["wall_s"] / max(1, local["epochs"]))
    print(json.dumps({"wall_ratio": served["wall_s"] / local["wall_s"],
                      "per_epoch_ratio": per_epoch, "completed": bool(served["state"])}))


if __name__ == "__main__":
    main()
