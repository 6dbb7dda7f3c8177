"""Several processes and threads on one study: numbers stay unique, claims are exclusive."""

from __future__ import annotations

import multiprocessing
import threading

import optuna
from optuna.study import StudyDirection
from optuna.trial import TrialState

from tuneboard.optimization.storage import SqlStorage

N_WORKERS = 4
N_TRIALS_EACH = 8


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -5.0, 5.0)
    layers = trial.suggest_int("layers", 1, 4)
    for step in range(3):
        trial.report((x - 1.0) ** 2 + layers + 1.0 / (step + 1), step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return (x - 1.0) ** 2 + layers


def _optimize(url: str, study_name: str) -> int:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=SqlStorage(url),
        study_name=study_name,
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(n_startup_trials=4),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2),
    )
    study.optimize(_objective, n_trials=N_TRIALS_EACH, catch=())
    return len(study.trials)


def test_processes_creating_and_optimizing_one_study_get_unique_numbers(db_url: str) -> None:
    with multiprocessing.get_context("spawn").Pool(N_WORKERS) as pool:
        pool.starmap(_optimize, [(db_url, "shared")] * N_WORKERS)

    SqlStorage.clear_cache()
    trials = optuna.load_study(study_name="shared", storage=SqlStorage(db_url)).trials
    n = N_WORKERS * N_TRIALS_EACH
    assert [t.number for t in trials] == list(range(n))
    assert len({t._trial_id for t in trials}) == n
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert any(t.state == TrialState.PRUNED for t in trials)


def test_threads_creating_trials_get_unique_numbers(db_url: str) -> None:
    storage = SqlStorage(db_url)
    study_id = storage.create_new_study([StudyDirection.MINIMIZE])

    def create() -> None:
        for _ in range(10):
            storage.create_new_trial(study_id)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    trials = storage.get_all_trials(study_id, deepcopy=False)
    assert [t.number for t in trials] == list(range(40))


def test_one_of_many_claims_on_a_waiting_trial_wins(db_url: str) -> None:
    storage = SqlStorage(db_url)
    study_id = storage.create_new_study([StudyDirection.MINIMIZE])
    waiting = optuna.trial.create_trial(state=TrialState.WAITING)
    trial_ids = [storage.create_new_trial(study_id, waiting) for _ in range(5)]
    barrier = threading.Barrier(4)
    wins: list[int] = []

    def claim() -> None:
        barrier.wait()
        for trial_id in trial_ids:
            if storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                wins.append(trial_id)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(wins) == trial_ids
    assert {t.state for t in storage.get_all_trials(study_id)} == {TrialState.RUNNING}
