"""SqlStorage on our tables: how Optuna's objects land in rows, and what the cache may skip."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import optuna
import pytest
import sqlalchemy as sa
from optuna.distributions import FloatDistribution, distribution_to_json
from optuna.exceptions import UpdateFinishedTrialError
from optuna.study import StudyDirection
from optuna.trial import TrialState

from tests.tuneboard.optimization.conftest import counting_reads
from tuneboard.db.base import utcnow
from tuneboard.db.engine import get_engine
from tuneboard.db.models import Study, Team, Trial
from tuneboard.optimization.storage import SqlStorage

X = FloatDistribution(0.0, 1.0)


def completed(n: int) -> list[optuna.trial.FrozenTrial]:
    return [
        optuna.trial.create_trial(
            params={"x": i / n}, distributions={"x": X}, value=float(i), intermediate_values={0: i}
        )
        for i in range(n)
    ]


def test_studies_map_to_study_rows(db_url: str) -> None:
    storage = SqlStorage(db_url)
    study_id = storage.create_new_study([StudyDirection.MINIMIZE, StudyDirection.MAXIMIZE], "s")
    unnamed = storage.create_new_study([StudyDirection.MINIMIZE])

    with get_engine(db_url).connect() as conn:
        row = conn.execute(sa.select(Study).where(Study.id == study_id)).one()
        generated = conn.scalar(sa.select(Study.optuna_name).where(Study.id == unnamed))
    assert (row.name, row.optuna_name, row.team_id, row.state) == ("s", "s", None, "running")
    assert row.directions == ["minimize", "maximize"]
    assert str(generated).startswith(optuna.storages._base.DEFAULT_STUDY_NAME_PREFIX)


def test_a_study_created_through_the_api_is_optimised_like_any_other(db_url: str) -> None:
    with get_engine(db_url).begin() as conn:
        team_id = conn.scalar(sa.insert(Team).values(name="vision").returning(Team.id))
        conn.execute(
            sa.insert(Study).values(
                team_id=team_id,
                name="digits-mlp",
                optuna_name="team-1/digits-mlp/7",
                directions=["maximize"],
                state="queued",
                spec={"name": "digits-mlp"},
            )
        )

    storage = SqlStorage(db_url)
    study = optuna.load_study(study_name="team-1/digits-mlp/7", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)

    assert [s.study_name for s in storage.get_all_studies()] == ["team-1/digits-mlp/7"]
    assert study.best_value == max(t.value for t in study.trials if t.value is not None)


def test_trials_map_to_trial_rows_with_non_finite_floats_as_strings(db_url: str) -> None:
    storage = SqlStorage(db_url)
    study_id = storage.create_new_study([StudyDirection.MINIMIZE])
    trial_id = storage.create_new_trial(study_id)
    storage.set_trial_param(trial_id, "x", 0.25, X)
    storage.set_trial_intermediate_value(trial_id, 0, 0.5)
    storage.set_trial_intermediate_value(trial_id, 1, math.nan)
    storage.set_trial_user_attr(trial_id, "bounds", [-math.inf, math.inf])
    storage.set_trial_state_values(trial_id, TrialState.COMPLETE, [math.nan])
    trial = storage.get_trial(trial_id)

    with get_engine(db_url).connect() as conn:
        row = conn.execute(sa.select(Trial).where(Trial.id == trial_id)).one()
    assert (row.number, row.state, row.value, row.values) == (0, "complete", None, ["nan"])
    assert row.params == {"x": 0.25}
    assert row.distributions == {"x": distribution_to_json(X)}
    assert row.intermediate_values == {"0": 0.5, "1": "nan"}
    assert row.user_attrs == {"bounds": ["-inf", "inf"]}
    assert (row.attempt, row.epochs_run, row.heartbeat_at, row.verdict) == (1, 0, None, None)
    # Naive UTC in the row, naive local time in Optuna's objects.
    assert abs(row.datetime_complete - utcnow()) < timedelta(minutes=1)
    assert trial.datetime_complete is not None and math.isnan(trial.values[0])
    assert trial.user_attrs == {"bounds": [-math.inf, math.inf]}


def test_finished_trials_are_read_once_then_served_from_the_cache(db_url: str) -> None:
    storage = SqlStorage(db_url)
    study_id = storage.create_new_study([StudyDirection.MINIMIZE])
    storage.add_trials(study_id, completed(30))
    running = storage.create_new_trial(study_id)
    assert len(storage.get_all_trials(study_id)) == 31

    with counting_reads(db_url) as reads:
        trials = storage.get_all_trials(study_id, deepcopy=False)
        storage.get_trial(trials[0]._trial_id)
    assert len(trials) == 31
    assert reads.rows == 1  # the running trial, with the study row in the same query
    assert len(reads.statements) == 1

    storage.set_trial_state_values(running, TrialState.COMPLETE, [0.0])
    with counting_reads(db_url) as reads:
        assert storage.get_trial(running).state == TrialState.COMPLETE
        assert storage.get_n_trials(study_id, TrialState.COMPLETE) == 31
        assert storage.get_best_trial(study_id).value == 0.0
    assert reads.rows <= 3  # a count and the best trial's id: no study-wide read


def test_trials_in_some_states_are_served_from_the_cache_until_one_more_finishes(
    db_url: str,
) -> None:
    storage = SqlStorage(db_url)
    study_id = storage.create_new_study([StudyDirection.MINIMIZE])
    storage.add_trials(study_id, completed(3))
    running = storage.create_new_trial(study_id)
    pruned = storage.create_new_trial(study_id)
    storage.set_trial_state_values(pruned, TrialState.PRUNED)
    complete = (TrialState.COMPLETE,)

    def numbers(states: tuple[TrialState, ...]) -> list[int]:
        return [t.number for t in storage.get_all_trials(study_id, deepcopy=False, states=states)]

    assert numbers(complete) == [0, 1, 2]
    storage.get_all_trials(study_id, deepcopy=False, states=complete).clear()  # the caller's
    assert numbers(complete) == [0, 1, 2]
    assert numbers((TrialState.PRUNED, TrialState.RUNNING)) == [3, 4]
    assert numbers((TrialState.RUNNING,)) == [3]
    assert numbers((TrialState.FAIL,)) == []

    storage.set_trial_state_values(running, TrialState.COMPLETE, [1.0])
    assert numbers(complete) == [0, 1, 2, 3]
    assert numbers((TrialState.PRUNED, TrialState.RUNNING)) == [4]


def test_other_writers_changes_are_seen(db_url: str) -> None:
    storage = SqlStorage(db_url)
    study_id = storage.create_new_study([StudyDirection.MINIMIZE])
    running = storage.create_new_trial(study_id)
    storage.add_trials(study_id, completed(2))
    assert [t.state for t in storage.get_all_trials(study_id)] == [TrialState.RUNNING] + [
        TrialState.COMPLETE
    ] * 2

    # Another process (raw SQL here) finishes the running trial and adds one.
    SqlStorage(db_url).add_trials(study_id, completed(1))
    with get_engine(db_url).begin() as conn:
        conn.execute(
            sa.update(Trial)
            .where(Trial.id == running)
            .values(state="pruned", intermediate_values={"3": 1.5}, datetime_complete=utcnow())
        )

    trials = storage.get_all_trials(study_id)
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert trials[0].state == TrialState.PRUNED and trials[0].intermediate_values == {3: 1.5}


def test_a_deleted_study_leaves_nothing_behind_even_when_its_id_comes_back(db_url: str) -> None:
    storage = SqlStorage(db_url)
    study_id = storage.create_new_study([StudyDirection.MINIMIZE], "again")
    storage.add_trials(study_id, completed(3))
    assert len(storage.get_all_trials(study_id)) == 3

    # Deleted and recreated elsewhere: a new id, and the old one is gone.
    with get_engine(db_url).begin() as conn:
        conn.execute(sa.delete(Study).where(Study.id == study_id))
    new_id = SqlStorage(db_url).create_new_study([StudyDirection.MINIMIZE], "again")
    assert new_id != study_id
    assert storage.get_all_trials(new_id) == []
    with pytest.raises(KeyError):
        storage.get_all_trials(study_id)

    # A recreated database hands out the old id again: the cache must notice.
    storage.add_trials(new_id, completed(2))
    assert len(storage.get_all_trials(new_id)) == 2
    with get_engine(db_url).begin() as conn:
        conn.execute(sa.delete(Study).where(Study.id == new_id))
        conn.execute(
            sa.insert(Study).values(
                id=new_id, name="other", optuna_name="other", directions=["minimize"]
            )
        )
    assert storage.get_all_trials(new_id) == []


def test_get_trial_param_returns_the_internal_representation(db_url: str) -> None:
    storage = SqlStorage(db_url)
    study_id = storage.create_new_study([StudyDirection.MINIMIZE])
    trial_id = storage.create_new_trial(study_id)
    choices = optuna.distributions.CategoricalDistribution(["a", "b"])
    storage.set_trial_param(trial_id, "c", 1, choices)

    assert storage.get_trial_param(trial_id, "c") == 1.0
    assert storage.get_trial(trial_id).params == {"c": "b"}


def _stored_params(db_url: str, trial_id: int) -> dict[str, float]:
    with get_engine(db_url).connect() as conn:
        return dict(conn.scalar(sa.select(Trial.params).where(Trial.id == trial_id)) or {})


def test_params_together_writes_a_trials_suggestions_in_one_transaction(db_url: str) -> None:
    storage = SqlStorage(db_url)
    study = optuna.create_study(storage=storage, study_name="together")
    trial = study.ask()
    commits = []

    def committed(conn: sa.Connection) -> None:
        commits.append(conn)

    sa.event.listen(get_engine(db_url), "commit", committed)
    try:
        with storage.params_together(trial._trial_id):
            x = trial.suggest_float("x", 0.0, 1.0)
            n = trial.suggest_int("n", 1, 8)
            kind = trial.suggest_categorical("kind", ["a", "b"])
            assert _stored_params(db_url, trial._trial_id) == {}  # nothing written yet
            assert trial.params == {"x": x, "n": n, "kind": kind}
    finally:
        sa.event.remove(get_engine(db_url), "commit", committed)
    assert len(commits) == 1
    assert storage.get_trial(trial._trial_id).params == {"x": x, "n": n, "kind": kind}


def test_params_together_writes_nothing_when_the_block_raises(db_url: str) -> None:
    storage = SqlStorage(db_url)
    trial = optuna.create_study(storage=storage, study_name="raises").ask()
    with pytest.raises(RuntimeError), storage.params_together(trial._trial_id):
        trial.suggest_float("x", 0.0, 1.0)
        raise RuntimeError("the sampler failed")
    assert _stored_params(db_url, trial._trial_id) == {}


def test_params_together_checks_each_distribution_against_the_study(db_url: str) -> None:
    storage = SqlStorage(db_url)
    study = optuna.create_study(storage=storage, study_name="checked")
    study.ask().suggest_float("x", 0.0, 1.0)  # the study's x is a float now
    trial = study.ask()
    with pytest.raises(ValueError), storage.params_together(trial._trial_id):
        trial.suggest_float("y", 0.0, 1.0)
        trial.suggest_categorical("x", ["a", "b"])
    assert _stored_params(db_url, trial._trial_id) == {}  # neither y nor x


def _statements_of(db_url: str, work: Callable[[], object]) -> list[str]:
    """The first word of each statement ``work`` sends (BEGIN of SQLite's transactions left
    out: PostgreSQL's are not statements SQLAlchemy sees either)."""
    sent: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.startswith("BEGIN"):
            sent.append(statement.split(None, 1)[0])

    sa.event.listen(get_engine(db_url), "before_cursor_execute", on_execute)
    try:
        work()
    finally:
        sa.event.remove(get_engine(db_url), "before_cursor_execute", on_execute)
    return sent


def test_a_remembered_trial_is_read_once_from_memory_and_its_first_params_in_one_update(
    db_url: str,
) -> None:
    storage = SqlStorage(db_url)
    study = optuna.create_study(storage=storage, study_name="remembered")
    study.ask().suggest_float("x", 0.0, 1.0)  # the study's distribution of x is known
    trial_id = study.ask()._trial_id
    frozen = storage.get_trial(trial_id)
    storage.remember_trial(frozen, study._study_id)

    assert _statements_of(db_url, lambda: storage.get_trial(trial_id)) == []
    assert storage.get_trial(trial_id) is not frozen  # only the next read: then the database's
    write = {"x": (0.5, X)}
    assert _statements_of(db_url, lambda: storage.set_trial_params(trial_id, write)) == ["UPDATE"]
    assert storage.get_trial(trial_id).params == {"x": 0.5}
    # Later writes are the full, checked ones.
    assert len(_statements_of(db_url, lambda: storage.set_trial_params(
        trial_id, {"y": (0.5, X)}))) > 1


def test_a_remembered_trials_first_params_in_the_callers_transaction_are_one_update(
    db_url: str,
) -> None:
    """What a worker's first report batch (or its finish) does with the ask's parameters."""
    storage = SqlStorage(db_url)
    study = optuna.create_study(storage=storage, study_name="remembered-in-transaction")
    study.ask().suggest_float("x", 0.0, 1.0)
    trial_id = study.ask()._trial_id
    storage.remember_trial(storage.get_trial(trial_id), study._study_id)
    storage.get_trial(trial_id)  # Optuna's Trial is built from it

    def write() -> None:
        with pytest.raises(RuntimeError), get_engine(db_url).begin() as conn:
            storage.set_trial_params_in(conn, trial_id, {"x": (0.25, X)})
            raise RuntimeError("the batch's next statement failed")

    assert _statements_of(db_url, write) == ["UPDATE"]
    assert _stored_params(db_url, trial_id) == {}  # rolled back with the caller's transaction
    with get_engine(db_url).begin() as conn:  # the batch again: the full, checked write
        storage.set_trial_params_in(conn, trial_id, {"x": (0.25, X)})
    assert storage.get_trial(trial_id).params == {"x": 0.25}


def test_a_remembered_trials_first_params_are_checked_and_refused_once_it_has_finished(
    db_url: str,
) -> None:
    storage = SqlStorage(db_url)
    study = optuna.create_study(storage=storage, study_name="remembered-checked")
    study.ask().suggest_float("x", 0.0, 1.0)
    categorical = optuna.distributions.CategoricalDistribution(["a", "b"])
    checked = study.ask()._trial_id
    storage.remember_trial(storage.get_trial(checked), study._study_id)
    with pytest.raises(ValueError):
        storage.set_trial_params(checked, {"x": (0.0, categorical)})
    assert _stored_params(db_url, checked) == {}

    finished = study.ask()._trial_id
    storage.remember_trial(storage.get_trial(finished), study._study_id)
    storage.set_trial_state_values(finished, TrialState.FAIL)  # the reaper failed it meanwhile
    with pytest.raises(UpdateFinishedTrialError):
        storage.set_trial_params(finished, {"x": (0.5, X)})
    assert _stored_params(db_url, finished) == {}


def test_params_written_in_the_callers_transaction_go_with_its_commit_or_rollback(
    db_url: str,
) -> None:
    storage = SqlStorage(db_url)
    study = optuna.create_study(storage=storage, study_name="in-transaction")
    trial_id = study.ask()._trial_id
    params = {"x": (0.25, X)}
    with pytest.raises(RuntimeError), get_engine(db_url).begin() as conn:
        storage.set_trial_params_in(conn, trial_id, params)
        assert storage.get_trial_in(conn, trial_id).params == {"x": 0.25}  # its own write
        raise RuntimeError("the caller's next statement failed")
    assert _stored_params(db_url, trial_id) == {}
    with get_engine(db_url).begin() as conn:
        storage.set_trial_params_in(conn, trial_id, params)
    assert storage.get_trial(trial_id).params == {"x": 0.25}


def test_params_written_in_the_callers_transaction_are_checked_against_the_study(
    db_url: str,
) -> None:
    storage = SqlStorage(db_url)
    study = optuna.create_study(storage=storage, study_name="in-transaction-checked")
    study.ask().suggest_float("x", 0.0, 1.0)
    trial_id = study.ask()._trial_id
    categorical = optuna.distributions.CategoricalDistribution(["a", "b"])
    with pytest.raises(ValueError), get_engine(db_url).begin() as conn:
        storage.set_trial_params_in(conn, trial_id, {"x": (0.0, categorical)})
    assert _stored_params(db_url, trial_id) == {}
