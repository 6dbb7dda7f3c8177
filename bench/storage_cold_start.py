"""A worker joining a big study: time to its first ask(), SqlStorage against Optuna's RDBStorage.

Seeds the same study, 20,000 finished trials with 20 intermediate values each, into two fresh
PostgreSQL databases of one server: Tuneboard's schema (migrations, then SqlStorage.add_trials)
and plain Optuna's RDBStorage (bulk inserts into its tables). Then, in a fresh process per
measurement, loads the study and times ``study.ask(space)`` (every parameter sampled) with a
RandomSampler and a TPESampler, and prints both side by side (the target: under 1 s;
plain Optuna about 17 s), with the same ask over Optuna's InMemoryStorage: the sampler's own
share, which no storage can remove. The databases (tb_bench_*) are dropped at the end.

    python bench/storage_cold_start.py [--trials 20000] [--steps 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)
from optuna.storages._rdb import models as rdb
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

ADMIN_URL = os.environ.get(
    "TUNEBOARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
STUDY = "cold-start"
SPACE = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "dropout": FloatDistribution(0.0, 0.5),
    "hidden": IntDistribution(32, 512, step=32),
    "optimizer": CategoricalDistribution(["sgd", "adam", "adamw"]),
}
SAMPLERS = ("random", "tpe")


def finished_trials(n: int, steps: int) -> list[FrozenTrial]:
    """Four in five complete, one in five pruned; every one reported ``steps`` times."""
    rng = random.Random(0)
    return [
        optuna.trial.create_trial(
            state=TrialState.PRUNED if i % 5 == 0 else TrialState.COMPLETE,
            value=None if i % 5 == 0 else rng.random(),
            params={
                "lr": 10 ** rng.uniform(-5, -1),
                "dropout": rng.uniform(0.0, 0.5),
                "hidden": 32 * rng.randint(1, 16),
                "optimizer": rng.choice(["sgd", "adam", "adamw"]),
            },
            distributions=SPACE,
            intermediate_values={step: rng.random() for step in range(steps)},
        )
        for i in range(n)
    ]


# --- Databases -----------------------------------------------------------------------------


def create_database(name: str) -> str:
    with sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(name: str) -> None:
    with sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed_tuneboard(url: str, trials: list[FrozenTrial]) -> None:
    from tuneboard.db.migrate import upgrade
    from tuneboard.optimization.storage import SqlStorage

    upgrade(url)
    storage = SqlStorage(url)
    study_id = storage.create_new_study([StudyDirection.MINIMIZE], STUDY)
    for i in range(0, len(trials), 2000):
        storage.add_trials(study_id, trials[i : i + 2000])


def seed_finished_study(url: str, name: str, n_trials: int, steps: int) -> tuple[int, str]:
    """``seed_tuneboard`` with ``n_trials`` finished trials, then the study made a completed
    Tuneboard study named ``name`` (owned by a new team) over ``SPACE``; returns its id and the
    team's API key."""
    from tuneboard.db import session_scope
    from tuneboard.db.models import Study
    from tuneboard.spec import StudySpec, StudyState
    from tuneboard.teams import create_team

    seed_tuneboard(url, finished_trials(n_trials, steps))
    spec = StudySpec.model_validate({
        "name": name,
        "objective": {"entrypoint": "bench", "metric": "loss", "direction": "minimize"},
        "search_space": {
            "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
            "dropout": {"type": "float", "low": 0.0, "high": 0.5},
            "hidden": {"type": "int", "low": 32, "high": 512, "step": 32},
            "optimizer": {"type": "categorical", "choices": ["sgd", "adam", "adamw"]},
        },
        "budget": {"n_trials": n_trials, "max_parallel": 4},
    }).model_dump(mode="json")
    with session_scope(url) as session:
        team, key = create_team(session, "bench")
        study = session.scalar(sa.select(Study).where(Study.optuna_name == STUDY))
        assert study is not None
        study.team_id, study.spec, study.state, study.name = (
            team.id, spec, StudyState.COMPLETED, "bench"
        )
        return study.id, key


def seed_optuna(url: str, trials: list[FrozenTrial]) -> None:
    """Optuna's RDBStorage would take minutes to create these one by one: bulk insert its rows."""
    storage = optuna.storages.RDBStorage(url)
    study_id = storage.create_new_study([StudyDirection.MINIMIZE], STUDY)
    tables = rdb.BaseModel.metadata.tables
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in tables}
    for number, trial in enumerate(trials):
        trial_id = number + 1
        rows["trials"].append(
            {
                "trial_id": trial_id,
                "number": number,
                "study_id": study_id,
                "state": trial.state,
                "datetime_start": trial.datetime_start,
                "datetime_complete": trial.datetime_complete,
            }
        )
        for name, value in trial.params.items():
            distribution = trial.distributions[name]
            rows["trial_params"].append(
                {
                    "trial_id": trial_id,
                    "param_name": name,
                    "param_value": distribution.to_internal_repr(value),
                    "distribution_json": distribution_to_json(distribution),
                }
            )
        if trial.value is not None:
            rows["trial_values"].append(
                {"trial_id": trial_id, "objective": 0, "value": trial.value, "value_type": "FINITE"}
            )
        for step, value in trial.intermediate_values.items():
            rows["trial_intermediate_values"].append(
                {
                    "trial_id": trial_id,
                    "step": step,
                    "intermediate_value": value,
                    "intermediate_value_type": "FINITE",
                }
            )
    with storage.engine.begin() as conn:
        for name in ("trials", "trial_params", "trial_values", "trial_intermediate_values"):
            for i in range(0, len(rows[name]), 50_000):
                conn.execute(sa.insert(tables[name]), rows[name][i : i + 50_000])
        conn.exec_driver_sql(
            "SELECT setval(pg_get_serial_sequence('trials', 'trial_id'), max(trial_id)) FROM trials"
        )
        conn.exec_driver_sql("ANALYZE")
    storage.engine.dispose()


# --- One measurement, in a process of its own ----------------------------------------------


def first_ask(store: str, url: str, sampler_name: str) -> dict[str, float]:
    sampler = make_sampler(sampler_name)
    import alembic.migration  # noqa: F401  (both stores' imports happen before the clock starts)

    from tuneboard.optimization.storage import SqlStorage

    start, cpu_start = time.perf_counter(), time.process_time()
    # Optuna's users pass the URL, which Optuna wraps in _CachedStorage(RDBStorage).
    storage = SqlStorage(url) if store == "tuneboard" else url
    study = optuna.load_study(study_name=STUDY, storage=storage, sampler=sampler)
    trial = study.ask(SPACE)
    elapsed = {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu_start}
    study.tell(trial, state=TrialState.FAIL)  # leave the study as it was for the next run
    return elapsed


def sampler_alone(trials: list[FrozenTrial], sampler_name: str) -> dict[str, float]:
    """The same first ask over Optuna's InMemoryStorage: the sampler's own share of the time."""
    study = optuna.create_study(sampler=make_sampler(sampler_name))
    study.add_trials(trials)
    start, cpu_start = time.perf_counter(), time.process_time()
    study.ask(SPACE)
    return {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu_start}


def make_sampler(name: str) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=1)
    return optuna.samplers.RandomSampler(seed=1)


def measure(store: str, url: str, sampler: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", store, url, sampler],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20_000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per cell")
    parser.add_argument("--child", nargs=3, metavar=("STORE", "URL", "SAMPLER"))
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.child:
        print(json.dumps(first_ask(*args.child)))
        return

    tag = uuid.uuid4().hex[:8]
    names = {"tuneboard": f"tb_bench_{tag}_tuneboard", "optuna": f"tb_bench_{tag}_optuna"}
    try:
        urls = {store: create_database(name) for store, name in names.items()}
        trials = finished_trials(args.trials, args.steps)
        for store, seed in (("tuneboard", seed_tuneboard), ("optuna", seed_optuna)):
            started = time.perf_counter()
            seed(urls[store], trials)
            print(f"seeded {store}: {time.perf_counter() - started:.1f} s", file=sys.stderr)

        results = {
            (store, sampler): [measure(store, urls[store], sampler) for _ in range(args.repeats)]
            for sampler in SAMPLERS
            for store in names
        }
        for sampler in SAMPLERS:
            runs = [sampler_alone(trials, sampler) for _ in range(args.repeats)]
            results["memory", sampler] = runs
    finally:
        for name in names.values():
            drop_database(name)

    print(
        f"\nfirst study.ask() of a fresh process joining a study of {args.trials:,} finished "
        f"trials x {args.steps} reports, on PostgreSQL; wall time, median of {args.repeats} "
        "processes (min), and the asking process's CPU time"
    )
    stores = ("tuneboard", "optuna", "memory")
    header = ["Tuneboard SqlStorage", "Optuna RDBStorage", "sampler alone (in-memory)"]
    print(f"{'sampler':<8}" + "".join(f"{h:>30}" for h in header) + f"{'speed-up':>10}")
    for sampler in SAMPLERS:
        cells = "".join(f"{_cell(results[store, sampler]):>30}" for store in stores)
        ratio = _median(results["optuna", sampler], "wall") / _median(
            results["tuneboard", sampler], "wall"
        )
        print(f"{sampler:<8}{cells}{ratio:>9.1f}x")


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def _cell(runs: list[dict[str, float]]) -> str:
    fastest = min(run["wall"] for run in runs)
    return f"{_median(runs, 'wall'):.2f} s ({fastest:.2f}), cpu {_median(runs, 'cpu'):.2f} s"


if __name__ == "__main__":
    main()
