"""Optuna over HTTP: ``RemoteStorage`` against a live uvicorn server (a process of its own, real
HTTP) on every test backend. Optuna's own storage conformance suite, a TPE study whose study
belongs to the key's team, standards (refusals and verdicts) and the client's cache."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import optuna
import pytest
from optuna.testing.pytest_storages import StorageTestCase

from tests.api.conftest import API, BROKER_URL, Team, make_team
from tests.live_server import serve_process
from tuneboard.client.optuna import RemoteStorage
from tuneboard.db import session_scope
from tuneboard.studies import repository as repo

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def server(migrated_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``uvicorn api.main:app`` in its own process on the backend's database."""
    with serve_process(migrated_db, BROKER_URL, tmp_path_factory.mktemp("optuna-server")) as url:
        yield url


@pytest.fixture
def team(db_url: str) -> Team:
    return make_team(db_url, "alpha")


@pytest.fixture
def storage(server: str, team: Team) -> Iterator[RemoteStorage]:
    remote = RemoteStorage(server, team.keys["member"])
    yield remote
    remote.close()


class TestRemoteStorage(StorageTestCase):
    pass


class Counting(RemoteStorage):
    """A RemoteStorage that records the path of every request it sends."""

    def _setup(self) -> None:
        super()._setup()
        self.paths: list[str] = []
        self._http.event_hooks["request"].append(lambda r: self.paths.append(r.url.path))

    def __getstate__(self) -> dict[str, object]:
        state = super().__getstate__()
        state.pop("paths", None)
        return state


def _objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -10, 10)
    layers = trial.suggest_int("layers", 1, 4)
    optimizer = trial.suggest_categorical("optimizer", ["sgd", "adam"])
    return (x - 2) ** 2 + layers + (0.5 if optimizer == "sgd" else 0.0)


def test_a_tpe_study_belongs_to_the_keys_team(server: str, db_url: str, team: Team) -> None:
    other = make_team(db_url, "beta")
    storage = RemoteStorage(server, team.keys["member"])
    study = optuna.create_study(
        study_name="mnist", storage=storage, sampler=optuna.samplers.TPESampler(seed=0)
    )
    study.optimize(_objective, n_trials=30)
    assert len(study.trials) == 30
    assert study.best_value < 3.0

    mine = httpx.get(f"{server}{API}/studies", headers=team.headers("viewer")).json()["items"]
    ours = [s for s in mine if s["id"] == study._study_id]
    assert ours and ours[0]["name"] == "mnist"
    theirs = httpx.get(f"{server}{API}/studies", headers=other.headers("viewer")).json()["items"]
    assert study._study_id not in {s["id"] for s in theirs}
    board = httpx.get(f"{server}{API}/studies/{study._study_id}/leaderboard",
                      headers=team.headers("viewer")).json()
    assert board["items"][0]["value"] == pytest.approx(study.best_value)

    # Another team may use the same name; it cannot see or load ours.
    other_storage = RemoteStorage(server, other.keys["member"])
    with pytest.raises(KeyError):
        optuna.load_study(study_name="mnist", storage=other_storage)
    with pytest.raises(KeyError):
        other_storage.get_all_trials(study._study_id)
    with pytest.raises(KeyError):
        other_storage.get_trial(study.trials[0]._trial_id)
    theirs_study = optuna.create_study(study_name="mnist", storage=other_storage)
    assert theirs_study._study_id != study._study_id
    assert optuna.load_study(study_name="mnist", storage=storage)._study_id == study._study_id


def test_viewers_read_and_members_write(server: str, team: Team) -> None:
    member = RemoteStorage(server, team.keys["member"])
    viewer = RemoteStorage(server, team.keys["viewer"])
    study_id = member.create_new_study([optuna.study.StudyDirection.MINIMIZE], "roles")
    member.create_new_trial(study_id)
    assert len(viewer.get_all_trials(study_id)) == 1
    with pytest.raises(Exception, match="403"):
        viewer.create_new_trial(study_id)
    with pytest.raises(Exception, match="403"):
        viewer.create_new_study([optuna.study.StudyDirection.MINIMIZE], "nope")


def test_finished_trials_are_not_fetched_again(server: str, team: Team) -> None:
    storage = Counting(server, team.keys["member"])
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.TPESampler(seed=1))
    study.optimize(_objective, n_trials=30)
    assert storage.get_n_trials(study._study_id) == 30

    old_ids = {t._trial_id for t in study.trials}
    storage.paths.clear()
    synced: list[int] = []
    original = storage._call

    def spy(method: str, path: str, **kwargs: Any) -> Any:
        result = original(method, path, **kwargs)
        if path.endswith("/trials/sync"):
            synced.extend(item["trial_id"] for item in result["items"])
        return result

    storage._call = spy  # type: ignore[method-assign]
    trial = study.ask()  # the 31st trial
    _objective(trial)
    study.tell(trial, 1.0)
    assert synced and set(synced) == {trial._trial_id}
    single = {int(p.rsplit("/", 1)[1]) for p in storage.paths
              if re.fullmatch(rf"{API}/optuna/trials/\d+", p)}
    assert not single & old_ids
    assert storage.get_n_trials(study._study_id) == 31


STANDARD = {
    "name": "tabular-baseline",
    "rules": [
        {"param": "optimizer", "allowed": ["adam", "adamw"],
         "rationale": "plain SGD diverged on our tabular sets"},
        {"param": "x", "range": {"low": -5, "high": 5}, "rationale": "outside [-5, 5] overflows"},
    ],
    "acceptance": [{"metric": "value", "op": "<=", "value": 20.0}],
}


def test_a_standard_refuses_params_and_judges_trials(
    server: str, db_url: str, team: Team
) -> None:
    response = httpx.post(f"{server}{API}/standards", json=STANDARD,
                          headers=team.headers("maintainer"))
    assert response.status_code == 201, response.text
    storage = RemoteStorage(server, team.keys["member"])
    study = optuna.create_study(study_name="governed", storage=storage)
    with pytest.raises(ValueError, match="no-such-standard"):
        study.set_user_attr("tuneboard.standard", "no-such-standard")
    study.set_user_attr("tuneboard.standard", "tabular-baseline@1")

    trial = study.ask()
    with pytest.raises(ValueError, match="plain SGD diverged") as refused:
        trial.suggest_categorical("optimizer", ["sgd"])
    assert "optimizer" in str(refused.value)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)

    # Over HTTP: 422 standard_violation naming the rule and its rationale.
    trial = study.ask()
    body = {"name": "x", "value": 7.0,
            "distribution": optuna.distributions.distribution_to_json(
                optuna.distributions.FloatDistribution(-10, 10))}
    response = httpx.post(f"{server}{API}/optuna/trials/{trial._trial_id}/params", json=body,
                          headers=team.headers("member"))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "standard_violation"
    assert error["details"][0]["rule"] == "x"
    assert "overflows" in error["details"][0]["rationale"]

    trial.suggest_float("x", -5, 5)
    trial.suggest_categorical("optimizer", ["adam", "adamw"])
    study.tell(trial, 3.0)
    late = study.ask()
    late.suggest_float("x", -5, 5)
    study.tell(late, 50.0)

    with session_scope(db_url) as session:
        accepted = repo.get_trial(session, study._study_id, trial.number)
        rejected = repo.get_trial(session, study._study_id, late.number)
        failed = repo.get_trial(session, study._study_id, 0)
        assert accepted is not None and rejected is not None and failed is not None
        assert accepted.accepted is True and accepted.verdict is not None
        assert accepted.verdict["standard"] == "tabular-baseline@1"
        assert rejected.accepted is False
        assert failed.accepted is False
