"""ReadOnlyStorage: Optuna reads work, over one team, with our names, metric names and trial
fields; every write is refused and changes nothing."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy as sa
from optuna.distributions import FloatDistribution
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import TrialState, create_trial

from tests.tuneboard.optimization.readonly_data import (
    REMOTE_METRICS,
    VERDICT,
    Store,
    seed,
    snapshot,
)
from tuneboard.db.engine import get_engine
from tuneboard.db.models import Trial
from tuneboard.errors import Forbidden
from tuneboard.optimization.readonly import (
    READ_ONLY_MESSAGE,
    ReadOnlyStorage,
    ReadOnlyStorageError,
)
from tuneboard.optimization.storage import SqlStorage


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Store:
    return seed(db_url, tmp_path)


@pytest.fixture
def storage(store: Store) -> ReadOnlyStorage:
    return ReadOnlyStorage(store.url, team_id=store.alpha)


def test_studies_show_their_own_names_and_only_the_teams(
    store: Store, storage: ReadOnlyStorage
) -> None:
    names = {s._study_id: s.study_name for s in storage.get_all_studies()}
    assert names == {
        store.mlp: f"digits-mlp #{store.mlp}",
        store.mlp_again: f"digits-mlp #{store.mlp_again}",
        store.multi: "digits-mo",
        store.remote: "remote-study",
    }
    for study_id, name in names.items():
        assert storage.get_study_id_from_name(name) == study_id
        assert storage.get_study_name_from_id(study_id) == name
    with pytest.raises(KeyError):
        storage.get_study_id_from_name("digits-mlp")  # ambiguous, hence not a name shown


def test_the_whole_store_when_no_team_is_given(store: Store) -> None:
    everything = ReadOnlyStorage(store.url)
    assert {s._study_id for s in everything.get_all_studies()} == {
        store.mlp, store.mlp_again, store.multi, store.remote, store.beta_study
    }
    # The store's three "digits-mlp" (two of alpha, one of beta) are told apart by id.
    assert everything.get_study_name_from_id(store.beta_study) == f"digits-mlp #{store.beta_study}"
    assert everything.get_study_name_from_id(store.multi) == "digits-mo"


def test_metric_names_come_from_the_spec_or_from_the_client(
    store: Store, storage: ReadOnlyStorage
) -> None:
    metric_names = {
        s._study_id: s.system_attrs.get("study:metric_names") for s in storage.get_all_studies()
    }
    assert metric_names == {
        store.mlp: ["val_accuracy"],
        store.mlp_again: ["val_accuracy"],
        store.multi: ["val_accuracy", "epoch_time_s"],
        store.remote: REMOTE_METRICS,
    }
    study = optuna.load_study(study_name="digits-mo", storage=storage)
    assert study.metric_names == ["val_accuracy", "epoch_time_s"]
    assert list(study.trials_dataframe().columns[:4]) == [
        "number", "values_val_accuracy", "values_epoch_time_s", "datetime_start"
    ]


def test_trials_carry_our_fields_as_user_attributes(store: Store, storage: ReadOnlyStorage) -> None:
    study = optuna.load_study(study_name=f"digits-mlp #{store.mlp}", storage=storage)
    shown = {t._trial_id: t.user_attrs for t in study.get_trials(deepcopy=False)}
    first, second, pruned = store.mlp_trial_ids
    assert shown[first] == {
        "epochs_run": 3, "device": "cpu", "attempt": 1, "accepted": True,
        "verdict": {**VERDICT, "accepted": True},
    }
    assert shown[pruned]["epochs_run"] == 5
    assert storage.get_trial(second).user_attrs["accepted"] is False
    assert study.best_trial._trial_id == second
    assert study.best_trial.user_attrs["verdict"] == VERDICT
    # The trials SqlStorage caches for the whole process are left as they were.
    cached = SqlStorage(store.url).get_all_trials(store.mlp, deepcopy=False)
    assert all("epochs_run" not in t.user_attrs for t in cached)


def test_a_verdict_given_after_the_trial_finished_shows_at_once(
    store: Store, storage: ReadOnlyStorage
) -> None:
    first = store.mlp_trial_ids[0]
    assert storage.get_trial(first).user_attrs["accepted"] is True
    with get_engine(store.url).begin() as conn:
        conn.execute(sa.update(Trial).where(Trial.id == first).values(accepted=False))
    assert storage.get_trial(first).user_attrs["accepted"] is False
    trials = storage.get_all_trials(store.mlp)
    assert next(t for t in trials if t._trial_id == first).user_attrs["accepted"] is False


def test_other_teams_studies_and_trials_do_not_exist_for_it(
    store: Store, storage: ReadOnlyStorage
) -> None:
    reads: list[Callable[[], Any]] = [
        lambda: storage.get_study_name_from_id(store.beta_study),
        lambda: storage.get_study_directions(store.beta_study),
        lambda: storage.get_study_user_attrs(store.beta_study),
        lambda: storage.get_study_system_attrs(store.beta_study),
        lambda: storage.get_all_trials(store.beta_study),
        lambda: storage.get_n_trials(store.beta_study),
        lambda: storage.get_best_trial(store.beta_study),
        lambda: storage.get_trial_id_from_study_id_trial_number(store.beta_study, 0),
        lambda: storage.get_trial(store.beta_trial_id),
        lambda: storage.get_trial_param(store.beta_trial_id, "lr"),
    ]
    for read in reads:
        with pytest.raises(KeyError):
            read()
    assert storage.get_n_trials(store.mlp) == 3  # the same reads work on alpha's own


def _template() -> optuna.trial.FrozenTrial:
    return create_trial(
        params={"lr": 0.01}, distributions={"lr": FloatDistribution(1e-5, 0.1, log=True)},
        value=0.5,
    )


def _writes(store: Store) -> dict[str, Callable[[ReadOnlyStorage], Any]]:
    trial_id = store.mlp_trial_ids[0]
    return {
        "create_new_study": lambda s: s.create_new_study([StudyDirection.MINIMIZE], "new"),
        "delete_study": lambda s: s.delete_study(store.mlp),
        "set_study_user_attr": lambda s: s.set_study_user_attr(store.mlp, "k", 1),
        "set_study_system_attr": lambda s: s.set_study_system_attr(store.mlp, "k", 1),
        "create_new_trial": lambda s: s.create_new_trial(store.mlp),
        "create_new_trial from a template": lambda s: s.create_new_trial(store.mlp, _template()),
        "set_trial_param": lambda s: s.set_trial_param(
            trial_id, "lr", 0.01, FloatDistribution(1e-5, 0.1, log=True)
        ),
        "set_trial_state_values": lambda s: s.set_trial_state_values(
            trial_id, TrialState.FAIL
        ),
        "set_trial_intermediate_value": lambda s: s.set_trial_intermediate_value(
            trial_id, 9, 0.1
        ),
        "set_trial_user_attr": lambda s: s.set_trial_user_attr(trial_id, "k", 1),
        "set_trial_system_attr": lambda s: s.set_trial_system_attr(trial_id, "k", 1),
        # What Optuna's own functions and optuna-dashboard's rename do through the storage.
        "optuna.delete_study": lambda s: optuna.delete_study(
            study_name="digits-mo", storage=s
        ),
        "optuna.create_study": lambda s: optuna.create_study(study_name="renamed", storage=s),
        "Study.set_user_attr": lambda s: optuna.load_study(
            study_name="digits-mo", storage=s
        ).set_user_attr("k", 1),
        "Study.ask": lambda s: optuna.load_study(study_name="digits-mo", storage=s).ask(),
        "Study.add_trial": lambda s: optuna.load_study(
            study_name="remote-study", storage=s
        ).add_trial(create_trial(values=[1.0, 2.0])),
    }


WRITES = [
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr",
    "create_new_trial", "create_new_trial from a template", "set_trial_param",
    "set_trial_state_values", "set_trial_intermediate_value", "set_trial_user_attr",
    "set_trial_system_attr", "optuna.delete_study", "optuna.create_study",
    "Study.set_user_attr", "Study.ask", "Study.add_trial",
]


def test_the_writes_tried_are_every_write_of_optunas_storage() -> None:
    writes = {
        name for name in dir(BaseStorage)
        if name.startswith(("create_", "delete_", "set_"))
    }
    assert writes == {w for w in WRITES if w.isidentifier()}
    assert set(_writes(Store("", 0, 0, 0, 0, 0, 0, 0, [0], 0, {}))) == set(WRITES)


@pytest.mark.parametrize("write", WRITES)
def test_every_write_is_refused_and_changes_nothing(
    write: str, store: Store, storage: ReadOnlyStorage
) -> None:
    before = snapshot(store.url)
    with warnings.catch_warnings(), pytest.raises(ReadOnlyStorageError) as refused:
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        _writes(store)[write](storage)
    assert refused.value.message == READ_ONLY_MESSAGE
    assert isinstance(refused.value, Forbidden) and refused.value.status_code == 403
    assert snapshot(store.url) == before
