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

With ``--workers 1,2``, for each N above 1 the same task with N trials at a time: the service
with one worker of N pool processes (what ``tuneboard worker --concurrency N`` runs;
``max_parallel: N``), against N fresh processes of ``study.optimize`` on one shared study that
replays the service's trials as above (all enqueued first; each process seeds a trial by its
number), started together once each has loaded the study. Each process takes the next enqueued
trial until none is left, as a worker slot takes the next dispatched one (fixed shares would
leave one process idle while another trains long trials). The shared study is where a user
would put it: on PostgreSQL, RDBStorage on a sibling database of the same server; on SQLite,
JournalStorage over a file, Optuna's storage for several processes on one machine (its
RDBStorage documentation never recommends SQLite for parallel optimization: one writer at a
time, and the enqueued-trial queue is not safe on it). With several trials at a time
Hyperband's decisions depend on the order the trials report in, so the two sides may prune
differently: the epochs of each side are printed, and the time per epoch beside the wall time.
Every N gets fresh databases, API and worker; the CPUs' busy share of each side is printed
(the API, the database and anything else on the machine share them).

    python bench/service_pruning.py [--backend sqlite|postgresql] [--trials 40] [--epochs 30]
                                    [--workers 1,2]
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import optuna
import sqlalchemy as sa
import torch
from _common import busy_share, cpu_jiffies, run_together, trial_context
from bookkeeping import Databases, Service, admin_key
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial, TrialState
from pruning import SPEC, spec_with

from tuneboard.objective import TrialPruned
from tuneboard.optimization import make_pruner, make_sampler
from tuneboard.spec import StudySpec
from workers.objectives import load_objective

# The trainer's spans, in the order a trial runs them; the worker logs them as objective.<name>.
TRAINER_SPANS = ("data", "model", "resume", "epochs", "report", "checkpoint", "report_flush")


def service_run(
    dbs: Databases, raw: dict[str, Any], home: Path, keep_log: Path | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    service = Service(dbs, home)
    try:
        key = admin_key(dbs.ours)
        service.start_api()
        service.start_worker(concurrency=workers)
        time.sleep(1.0)  # the pool's children forked and connected to the broker
        auth = {"Authorization": f"Bearer {key}"}
        jiffies = cpu_jiffies()
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
        busy = busy_share(jiffies, cpu_jiffies())
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
            "busy": busy,
            "pruned": study["counts"]["pruned"],
            "state": study["state"] == "completed",
            "optuna_name": optuna_name,
            "replay": [(t["params"], int(t["seed"] or 0)) for t in trials],
        }
    finally:
        service.stop_all()


class Replay:
    """The built-in trainer as Optuna's objective for a study whose trials were enqueued from a
    replay: each trial seeded as the worker seeded the trial of its number, the epochs counted
    and the trainer's spans summed over the trials."""

    def __init__(self, spec: StudySpec, seeds: list[int], workdir: Path) -> None:
        self.spec, self.seeds, self.workdir = spec, seeds, workdir
        self.objective_fn = load_objective(spec.objective.model_dump(mode="json"))
        self.metric = spec.metrics[0]
        self.epochs = 0
        self.spans: dict[str, float] = {}

    def __call__(self, trial: optuna.Trial) -> float:
        if trial.number >= len(self.seeds):
            # Two processes both saw the last enqueued trial waiting: the one without it stops.
            trial.study.stop()
            raise optuna.TrialPruned("past the replay")

        def reporter(step: int, metrics: Any) -> None:
            self.epochs += 1
            trial.report(float(metrics[self.metric]), step)
            if trial.should_prune():
                raise TrialPruned(f"pruned at epoch {step}")

        ctx = trial_context(self.spec, trial, self.workdir, reporter)
        ctx.seed = self.seeds[trial.number]
        random.seed(ctx.seed)  # as the worker seeds a trial
        np.random.seed(ctx.seed % 2**32)
        torch.manual_seed(ctx.seed)
        started = time.perf_counter()
        try:
            result = self.objective_fn(ctx)
        except TrialPruned as exc:
            raise optuna.TrialPruned(str(exc)) from exc
        finally:
            self.spans["objective"] = self.spans.get("objective", 0.0) + (
                time.perf_counter() - started)
            for name, seconds in ctx.spans.items():
                key = f"objective.{name}"
                self.spans[key] = self.spans.get(key, 0.0) + seconds
        return float(result[self.metric] if isinstance(result, dict) else result)


def local_run(
    spec: StudySpec, study_name: str, replay: list[tuple[dict[str, Any], int]], workdir: Path
) -> dict[str, Any]:
    """Plain ``study.optimize`` in memory, the built-in trainer as the objective, on the
    ``replay``'s parameters and seeds in order, summing the trainer's spans over the trials."""
    objective = Replay(spec, [seed for _, seed in replay], workdir)
    study = optuna.create_study(
        study_name=study_name, direction=spec.directions[0],
        sampler=make_sampler(spec.sampler, spec.search_space, n_objectives=1),
        pruner=make_pruner(spec.pruner, max_steps=spec.objective.max_epochs),
    )
    for params, _ in replay:
        study.enqueue_trial(params)
    jiffies = cpu_jiffies()
    start = time.perf_counter()
    study.optimize(objective, n_trials=len(replay))
    wall = time.perf_counter() - start
    busy = busy_share(jiffies, cpu_jiffies())
    pruned = sum(t.state == TrialState.PRUNED for t in study.trials)
    return {"epochs": objective.epochs, "best": study.best_value, "wall_s": wall, "busy": busy,
            "pruned": pruned, "spans": objective.spans, "n_trials": len(study.trials)}


def shared_storage(place: str) -> BaseStorage:
    """The peer's shared study: RDBStorage on a database URL, JournalStorage on a file path."""
    if "://" in place:
        return RDBStorage(place)
    return JournalStorage(JournalFileBackend(place))


def shared_run(
    spec: StudySpec, study_name: str, replay: list[tuple[dict[str, Any], int]], place: str,
    workers: int, workdir: Path,
) -> dict[str, Any]:
    """``workers`` fresh processes of ``study.optimize`` on one study at ``place``, the
    ``replay``'s parameters enqueued in order, started together."""
    storage = shared_storage(place)
    study = optuna.create_study(study_name=study_name, storage=storage,
                                direction=spec.directions[0])
    for params, _ in replay:
        study.enqueue_trial(params)
    seeds = [seed for _, seed in replay]
    run = run_together(peer_process, [(spec, study_name, seeds, place, workdir)] * workers)
    done = optuna.load_study(study_name=study_name, storage=storage)
    replayed = [t for t in done.get_trials(deepcopy=False) if t.number < len(replay)]
    assert len(replayed) == len(replay) and all(t.state.is_finished() for t in replayed)
    if isinstance(storage, RDBStorage):
        storage.engine.dispose()
    return {
        "epochs": sum(len(t.intermediate_values) for t in replayed),
        "best": done.best_value,
        "wall_s": run.wall_s,
        "busy": run.busy,
        "pruned": sum(t.state == TrialState.PRUNED for t in replayed),
        "n_trials": len(replayed),
    }


def peer_process(
    spec: StudySpec, study_name: str, seeds: list[int], place: str, workdir: Path
) -> Callable[[], object]:
    """One of ``shared_run``'s processes: the study loaded with the spec's sampler and pruner;
    its run, the next enqueued trial until none is left."""
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name=study_name, storage=shared_storage(place),
        sampler=make_sampler(spec.sampler, spec.search_space, n_objectives=1),
        pruner=make_pruner(spec.pruner, max_steps=spec.objective.max_epochs),
    )
    objective = Replay(spec, seeds, workdir)
    return lambda: study.optimize(objective, n_trials=len(seeds), callbacks=[stop_when_replayed])


def stop_when_replayed(study: optuna.Study, trial: FrozenTrial) -> None:
    if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        study.stop()


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


def _ms_per_epoch(result: dict[str, Any]) -> float:
    return 1000 * result["wall_s"] / max(1, result["epochs"])


def print_one_worker(backend: str, served: dict[str, Any], local: dict[str, Any]) -> None:
    print(f"{'':>26} {'epochs':>8} {'best val_acc':>13} {'pruned':>7} {'wall s':>8} "
          f"{'ms/epoch':>9}")
    for name, r in (("in-process Optuna", local), (f"Tuneboard ({backend})", served)):
        print(f"{name:>26} {r['epochs']:>8.0f} {r['best']:>13.4f} {r['pruned']:>7.0f} "
              f"{r['wall_s']:>8.1f} {_ms_per_epoch(r):>9.1f}")
    print_spans(served, local)
    print(json.dumps({"wall_ratio": served["wall_s"] / local["wall_s"],
                      "per_epoch_ratio": _ms_per_epoch(served) / _ms_per_epoch(local),
                      "completed": bool(served["state"])}))


def print_workers(backend: str, results: dict[int, tuple[dict[str, Any], dict[str, Any]]],
                  shared: str) -> None:
    print(f"\nN trials at a time on {backend}: Tuneboard, one worker of N pool processes "
          f"(max_parallel N); Optuna, N processes of study.optimize on one study ({shared}; "
          "N = 1: the in-memory study above), the service's trials replayed")
    print(f"{'workers':>7} {'side':>9} {'epochs':>7} {'best val_acc':>13} {'pruned':>7} "
          f"{'wall s':>7} {'ms/epoch':>9} {'CPUs busy':>9}")
    for n, (served, peer) in results.items():
        for name, r in (("Optuna", peer), ("Tuneboard", served)):
            print(f"{n:>7} {name:>9} {r['epochs']:>7.0f} {r['best']:>13.4f} {r['pruned']:>7.0f} "
                  f"{r['wall_s']:>7.1f} {_ms_per_epoch(r):>9.1f} {100 * r['busy']:>8.0f}%")
        print(f"{n:>7} {'ratio':>9} {served['epochs'] / max(1, peer['epochs']):>7.2f} {'':>13} "
              f"{'':>7} {served['wall_s'] / peer['wall_s']:>7.2f} "
              f"{_ms_per_epoch(served) / _ms_per_epoch(peer):>9.2f}")
    print("ratio: Tuneboard over Optuna (below 1: the service is faster). With N > 1 Hyperband's "
          "decisions depend on the order the trials report in, so the sides may train different "
          "epochs: then ms/epoch is the figure to compare")
    for n, (served, peer) in results.items():
        if n > 1:
            print(json.dumps({"workers": n, "wall_ratio": served["wall_s"] / peer["wall_s"],
                              "per_epoch_ratio": _ms_per_epoch(served) / _ms_per_epoch(peer),
                              "completed": bool(served["state"])}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--pruner", default="hyperband")
    parser.add_argument("--workers", default="1",
                        help="trials at a time on each side, comma-separated (1,2)")
    parser.add_argument("--worker-log", type=Path,
                        help="keep the worker's log here (N > 1: NAME-N.EXT beside it)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    counts = [int(n) for n in args.workers.split(",") if n]
    spec = spec_with(args.trials, args.epochs, args.pruner)
    shared = ("RDBStorage on PostgreSQL" if args.backend == "postgresql"
              else "JournalStorage on a file")

    results: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}
    for n in counts:
        raw = copy.deepcopy(SPEC)
        raw["objective"]["max_epochs"] = args.epochs
        raw["budget"]["n_trials"] = args.trials
        raw["budget"]["max_parallel"] = n
        raw["pruner"] = {"type": args.pruner}
        log = args.worker_log
        if log is not None and n > 1:
            log = log.with_stem(f"{log.stem}-{n}")
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            dbs = Databases(args.backend, home)
            try:
                served = service_run(dbs, raw, home, log, n)
                if n == 1:
                    peer = local_run(spec, served["optuna_name"], served["replay"],
                                     home / "local")
                else:
                    place = (dbs.optuna if args.backend == "postgresql"
                             else str(home / "optuna.journal"))
                    peer = shared_run(spec, served["optuna_name"], served["replay"], place, n,
                                      home / "shared")
            finally:
                dbs.drop()
        results[n] = (served, peer)
        if n == 1:
            print_one_worker(args.backend, served, peer)
    if counts != [1]:
        print_workers(args.backend, results, shared)


if __name__ == "__main__":
    main()
