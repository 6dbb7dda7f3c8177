"""A process joining a big study reads each trial row once, then only what changed.

These tests count rows the database returns, not seconds (bench/storage_cold_start.py has the
timings). The study: 20,000 finished trials on PostgreSQL and 5,000 on SQLite (to keep the
suite fast), each with 20 intermediate values, and per-epoch rows in ``trial_metrics`` that
Optuna must never need.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import optuna
import pytest
import sqlalchemy as sa
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from tests.db_support import empty_database
from tests.tuneboard.optimization.conftest import counting_reads
from tuneboard.db.engine import get_engine, is_sqlite
from tuneboard.db.models import Trial, TrialMetric
from tuneboard.optimization.storage import SqlStorage

N_TRIALS = {"sqlite": 5_000, "postgresql": 20_000}
N_STEPS = 20
STUDY = "joined-late"
SPACE = {
    "lr": FloatDistribution(1e-5, 1e-1, log=True),
    "dropout": FloatDistribution(0.0, 0.5),
    "hidden": IntDistribution(32, 512, step=32),
    "optimizer": CategoricalDistribution(["sgd", "adam", "adamw"]),
}


def finished_trials(n: int, seed: int = 0) -> list[FrozenTrial]:
    rng = random.Random(seed)
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
            intermediate_values={step: rng.random() for step in range(N_STEPS)},
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def big_study(migrated_db: str) -> Iterator[str]:
    """``migrated_db`` holding study STUDY, seeded by bulk inserts."""
    storage = SqlStorage(migrated_db)
    study_id = storage.create_new_study([StudyDirection.MINIMIZE], STUDY)
    backend = "sqlite" if is_sqlite(migrated_db) else "postgresql"
    storage.add_trials(study_id, finished_trials(N_TRIALS[backend]))
    with get_engine(migrated_db).begin() as conn:
        trial_ids = conn.execute(sa.select(Trial.id).where(Trial.study_id == study_id).limit(500))
        metrics = [
            {"trial_id": trial_id, "step": step, "name": name, "value": 0.5}
            for trial_id in trial_ids.scalars()
            for step in range(N_STEPS)
            for name in ("val_loss", "val_accuracy")
        ]
        conn.execute(sa.insert(TrialMetric), metrics)
    yield migrated_db
    empty_database(migrated_db)
    SqlStorage.clear_cache()


def make_sampler(name: str) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=0)
    return optuna.samplers.RandomSampler(seed=0)


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_first_ask_reads_each_trial_row_once_and_no_metrics(big_study: str, sampler: str) -> None:
    storage = SqlStorage(big_study)
    n_trials = storage.get_n_trials(storage.get_study_id_from_name(STUDY))
    SqlStorage.clear_cache()  # as in a process that just started

    with counting_reads(big_study) as reads:
        study = optuna.load_study(
            study_name=STUDY, storage=SqlStorage(big_study), sampler=make_sampler(sampler)
        )
        trial = study.ask(SPACE)

    # One row per trial, not one per intermediate value (that would be 20x as many).
    assert n_trials <= reads.rows <= n_trials + 50
    assert not [s for s in reads.statements if "trial_metrics" in s]
    study.tell(trial, 0.5)


def test_later_asks_read_only_new_and_unfinished_trials(big_study: str) -> None:
    study = optuna.load_study(
        study_name=STUDY,
        storage=SqlStorage(big_study),
        sampler=make_sampler("tpe"),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=0),
    )
    study.tell(study.ask(SPACE), 0.5)
    SqlStorage(big_study).add_trials(study._study_id, finished_trials(100, seed=1))

    with counting_reads(big_study) as reads:
        trial = study.ask(SPACE)
    assert 100 <= reads.rows <= 100 + 20
    study.tell(trial, 0.5)

    rows_per_ask = []
    for _ in range(5):
        with counting_reads(big_study) as reads:
            trial = study.ask(SPACE)
        rows_per_ask.append(reads.rows)
        trial.report(0.5, step=0)
        study.tell(trial, TrialState.PRUNED if trial.should_prune() else 0.5)
    assert max(rows_per_ask) <= 20, rows_per_ask


def test_rows_read_per_ask_do_not_grow_with_finished_trials(db_url: str) -> None:
    study = optuna.create_study(
        storage=SqlStorage(db_url),
        sampler=make_sampler("tpe"),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2),
    )
    rows_per_ask = []
    for _ in range(30):
        with counting_reads(db_url) as reads:
            trial = study.ask(SPACE)
        rows_per_ask.append(reads.rows)
        for step in range(3):
            trial.report(trial.params["dropout"] + step, step)
            if trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, trial.params["dropout"])

    # Once TPE is past its 10 random startup trials, every ask reads the same few rows
    # whether the study holds 10 finished trials or 29.
    assert len(set(rows_per_ask[10:])) == 1, str(rows_per_ask)
    assert rows_per_ask[-1] <= 15
