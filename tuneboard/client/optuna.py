"""Optuna over HTTP: ``RemoteStorage`` is an ``optuna.storages.BaseStorage`` that talks to the
Tuneboard API, so an Optuna script changes one line and its studies belong to the key's team:

    import optuna
    from tuneboard.client.optuna import RemoteStorage

    study = optuna.create_study(study_name="mnist", storage=RemoteStorage())  # TUNEBOARD_URL, ...
    study.set_user_attr("tuneboard.standard", "vision-baseline")           # optional
    study.optimize(objective, n_trials=100)

Finished trials never change, so each storage keeps those it has seen and asks the server only
for trials with a higher id than any it has seen and for those it saw unfinished (as Optuna's
gRPC proxy does). That relies on the server's invariant that, within a study, trial ids grow in
commit order.

The wire format (this module owns it; the server imports it): JSON, non-finite floats as the
strings "nan", "inf" and "-inf" (JSON has none), datetimes as ISO 8601 with their UTC offset
(Optuna's own are naive local time), trial states by Optuna's names, distributions as
``optuna.distributions.distribution_to_json``, params in their internal representation.

Errors become what Optuna expects: an unknown (or another team's) study or trial is a
``KeyError``; a study name taken, ``DuplicatedStudyError``; a change to a finished trial,
``UpdateFinishedTrialError``; invalid input (an incompatible distribution, a parameter outside
the study's standard), ``ValueError`` with the API's reasons. Anything else is an ``ApiError``.
"""

from __future__ import annotations

import copy
import functools
import math
import os
import threading
import uuid
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from optuna.distributions import BaseDistribution, distribution_to_json, json_to_distribution
from optuna.exceptions import DuplicatedStudyError, UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.storages._base import DEFAULT_STUDY_NAME_PREFIX
from optuna.study import StudyDirection
from optuna.study._frozen import FrozenStudy
from optuna.trial import FrozenTrial, TrialState

from tuneboard.client._errors import ApiError, ConfigError
from tuneboard.client._http import (
    API_PREFIX,
    DEFAULT_URL,
    Retry,
    _decode,
    api_key_from_env,
    paginate,
    send,
)

__all__ = [
    "DUPLICATED_STUDY",
    "STANDARD_ATTR",
    "TRIAL_FINISHED",
    "RemoteStorage",
    "decode",
    "decode_float",
    "encode",
    "encode_float",
    "format_time",
    "parse_time",
    "trial_from_json",
    "trial_to_json",
]

PREFIX = API_PREFIX + "/optuna"
# The study user attribute that names a standard ("name" or "name@N") for the study's trials.
STANDARD_ATTR = "tuneboard.standard"
# Error codes of the 409s that Optuna has exceptions of its own for.
DUPLICATED_STUDY = "duplicated_study"
TRIAL_FINISHED = "trial_finished"
PAGE_SIZE = 500
RETRY = Retry(attempts=6, statuses=frozenset({429, 502, 503, 504}), first_s=0.1, max_s=5.0)
_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_DIRECTIONS = {StudyDirection.MINIMIZE: "minimize", StudyDirection.MAXIMIZE: "maximize"}
_DIRECTION_OF = {name: direction for direction, name in _DIRECTIONS.items()}


# --- The wire format ------------------------------------------------------------------------


def encode_float(value: float) -> float | str:
    value = float(value)
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def decode_float(value: float | str) -> float:
    return _NON_FINITE[value] if isinstance(value, str) else float(value)


def encode(value: Any) -> Any:
    """A JSON-safe copy of an attribute value: non-finite floats become strings."""
    if isinstance(value, float):
        return encode_float(value)
    if isinstance(value, dict):
        return {key: encode(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [encode(item) for item in value]
    return value


def decode(value: Any) -> Any:
    """``encode`` undone. The store keeps attributes the same way, so the string "nan" in an
    attribute reads back as a float there too."""
    if isinstance(value, str):
        return _NON_FINITE.get(value, value)
    if isinstance(value, dict):
        return {key: decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode(item) for item in value]
    return value


def format_time(local: datetime | None) -> str | None:
    """Optuna's naive local time as ISO 8601 with this machine's UTC offset."""
    return None if local is None else local.astimezone().isoformat()


def parse_time(text: str | None) -> datetime | None:
    """ISO 8601 (with an offset) as Optuna's naive local time of this machine."""
    if text is None:
        return None
    moment = datetime.fromisoformat(text)
    return moment.astimezone().replace(tzinfo=None) if moment.tzinfo else moment


@functools.lru_cache(maxsize=4096)
def _distribution_json(distribution: BaseDistribution) -> str:
    return distribution_to_json(distribution)


@functools.lru_cache(maxsize=4096)
def _distribution(text: str) -> BaseDistribution:
    return json_to_distribution(text)


def trial_to_json(trial: FrozenTrial) -> dict[str, Any]:
    dists = trial.distributions
    return {
        "trial_id": trial._trial_id,
        "number": trial.number,
        "state": trial.state.name,
        "values": None if trial.values is None else [encode_float(v) for v in trial.values],
        "datetime_start": format_time(trial.datetime_start),
        "datetime_complete": format_time(trial.datetime_complete),
        "params": {
            name: encode_float(dists[name].to_internal_repr(value))
            for name, value in trial.params.items()
        },
        "distributions": {name: _distribution_json(dists[name]) for name in trial.params},
        "user_attrs": encode(trial.user_attrs),
        "system_attrs": encode(trial.system_attrs),
        "intermediate_values": {
            str(step): encode_float(value) for step, value in trial.intermediate_values.items()
        },
    }


def trial_from_json(data: dict[str, Any]) -> FrozenTrial:
    """``trial_to_json`` undone; KeyError or ValueError for a document that is not one."""
    dists = {name: _distribution(text) for name, text in data["distributions"].items()}
    values = data.get("values")
    return FrozenTrial(
        number=int(data.get("number", 0)),
        state=TrialState[data["state"]],
        value=None,
        values=None if values is None else [decode_float(v) for v in values],
        datetime_start=parse_time(data.get("datetime_start")),
        datetime_complete=parse_time(data.get("datetime_complete")),
        params={
            name: dists[name].to_external_repr(decode_float(value))
            for name, value in data["params"].items()
        },
        distributions=dists,
        user_attrs=decode(data.get("user_attrs") or {}),
        system_attrs=decode(data.get("system_attrs") or {}),
        intermediate_values={
            int(step): decode_float(value)
            for step, value in (data.get("intermediate_values") or {}).items()
        },
        trial_id=int(data.get("trial_id", -1)),
    )


# --- The client cache -----------------------------------------------------------------------


@dataclass
class _StudyCache:
    """What this storage knows of one study's trials."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    trials: dict[int, FrozenTrial] = field(default_factory=dict)  # by number
    max_id_seen: int = -1
    unfinished_ids: set[int] = field(default_factory=set)
    ordered: list[FrozenTrial] | None = None  # ``trials`` by number, until they change

    def by_number(self) -> list[FrozenTrial]:
        if self.ordered is None:
            self.ordered = sorted(self.trials.values(), key=lambda t: t.number)
        return list(self.ordered)


# --- The storage ----------------------------------------------------------------------------


class RemoteStorage(BaseStorage):
    """Optuna's storage behind the Tuneboard API at ``url`` (default ``$TUNEBOARD_URL``), as the
    team of ``api_key`` (default ``$TUNEBOARD_API_KEY``) sees it.

    Connection failures and 429/502/503/504 answers are retried with backoff (a request that
    may have reached the server is retried only when repeating it is harmless).
    """

    def __init__(
        self, url: str | None = None, api_key: str | None = None, *, timeout: float = 30.0
    ) -> None:
        self.url = (url or os.environ.get("TUNEBOARD_URL") or DEFAULT_URL).rstrip("/")
        key = api_key or api_key_from_env()
        if key is None:
            raise ConfigError("no API key: pass api_key or set TUNEBOARD_API_KEY")
        self._api_key = key
        self.timeout = timeout
        self._setup()

    def _setup(self) -> None:
        self._http = httpx.Client(
            base_url=self.url,
            timeout=self.timeout,
            headers={"Authorization": f"Bearer {self._api_key}"},
        )
        self._lock = threading.Lock()
        self._studies: dict[int, _StudyCache] = {}
        self._finished: dict[int, FrozenTrial] = {}  # by trial id
        self._directions: dict[int, list[StudyDirection]] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for name in ("_http", "_lock", "_studies", "_finished", "_directions"):
            del state[name]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()

    def close(self) -> None:
        self._http.close()

    # --- plumbing ---

    def _call(self, method: str, path: str, *, safe: bool = False, **kwargs: Any) -> Any:
        """One request, retried as the class says; ``safe``: repeating it changes nothing."""
        response = send(self._http, method, PREFIX + path, retry=RETRY,
                        safe=safe or method == "GET", **kwargs)
        return _result(response)

    def _study_cache(self, study_id: int) -> _StudyCache:
        with self._lock:
            return self._studies.setdefault(study_id, _StudyCache())

    def _forget_study(self, study_id: int) -> None:
        with self._lock:
            cache = self._studies.pop(study_id, None)
            self._directions.pop(study_id, None)
            for trial in cache.trials.values() if cache else ():
                self._finished.pop(trial._trial_id, None)

    # --- studies ---

    def create_new_study(
        self, directions: Sequence[StudyDirection], study_name: str | None = None
    ) -> int:
        if study_name is None:
            study_name = f"{DEFAULT_STUDY_NAME_PREFIX}{uuid.uuid4()}"
        body = {"directions": [_DIRECTIONS[d] for d in directions], "study_name": study_name}
        return int(self._call("POST", "/studies", json=body)["study_id"])

    def delete_study(self, study_id: int) -> None:
        try:
            self._call("DELETE", f"/studies/{study_id}")
        finally:
            self._forget_study(study_id)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        body = {"key": key, "value": encode(value)}
        self._call("POST", f"/studies/{study_id}/user_attrs", json=body, safe=True)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        body = {"key": key, "value": encode(value)}
        self._call("POST", f"/studies/{study_id}/system_attrs", json=body, safe=True)

    def get_study_id_from_name(self, study_name: str) -> int:
        found = self._call("GET", "/studies/by-name", params={"name": study_name})
        return int(found["study_id"])

    def _study(self, study_id: int) -> dict[str, Any]:
        study: dict[str, Any] = self._call("GET", f"/studies/{study_id}")
        return study

    def get_study_name_from_id(self, study_id: int) -> str:
        return str(self._study(study_id)["study_name"])

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        directions = self._directions.get(study_id)
        if directions is None:
            directions = [_DIRECTION_OF[d] for d in self._study(study_id)["directions"]]
            self._directions[study_id] = directions
        return list(directions)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return dict(decode(self._study(study_id)["user_attrs"]))

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return dict(decode(self._study(study_id)["system_attrs"]))

    def get_all_studies(self) -> list[FrozenStudy]:
        items = paginate(lambda query: self._call("GET", "/studies", params=query),
                         {"limit": PAGE_SIZE})
        return [
            FrozenStudy(
                study_name=item["study_name"],
                direction=None,
                directions=[_DIRECTION_OF[d] for d in item["directions"]],
                user_attrs=decode(item["user_attrs"]),
                system_attrs=decode(item["system_attrs"]),
                study_id=item["study_id"],
            )
            for item in items
        ]

    # --- trials: writes ---

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        body = {"template": None if template_trial is None else trial_to_json(template_trial)}
        return int(self._call("POST", f"/studies/{study_id}/trials", json=body)["trial_id"])

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
    ) -> None:
        body = {
            "name": param_name,
            "value": encode_float(param_value_internal),
            "distribution": _distribution_json(distribution),
        }
        self._call("POST", f"/trials/{trial_id}/params", json=body, safe=True)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        body = {
            "state": state.name,
            "values": None if values is None else [encode_float(v) for v in values],
        }
        return bool(self._call("POST", f"/trials/{trial_id}/state", json=body)["updated"])

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        body = {"step": step, "value": encode_float(intermediate_value)}
        self._call("POST", f"/trials/{trial_id}/intermediate_values", json=body, safe=True)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        body = {"key": key, "value": encode(value)}
        self._call("POST", f"/trials/{trial_id}/user_attrs", json=body, safe=True)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        body = {"key": key, "value": encode(value)}
        self._call("POST", f"/trials/{trial_id}/system_attrs", json=body, safe=True)

    # --- trials: reads ---

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        found = self._call("GET", f"/studies/{study_id}/trials/by-number/{trial_number}")
        return int(found["trial_id"])

    def get_trial(self, trial_id: int) -> FrozenTrial:
        cached = self._finished.get(trial_id)
        if cached is not None:
            return cached
        trial = trial_from_json(self._call("GET", f"/trials/{trial_id}"))
        if trial.state.is_finished():
            self._finished[trial_id] = trial
        return trial

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        cache = self._study_cache(study_id)
        with cache.lock:
            self._sync(study_id, cache)
            trials = cache.by_number()
        if states is not None:
            trials = [t for t in trials if t.state in states]
        return copy.deepcopy(trials) if deepcopy else trials

    def _sync(self, study_id: int, cache: _StudyCache) -> None:
        """Read the trials this storage has not seen finished: those with a higher id than any
        seen, and those seen unfinished."""
        body = {"after_id": cache.max_id_seen, "unfinished_ids": sorted(cache.unfinished_ids)}

        def fetch(query: dict[str, Any]) -> Any:
            try:
                return self._call(
                    "POST", f"/studies/{study_id}/trials/sync", json=body, params=query, safe=True
                )
            except KeyError:
                self._forget_study(study_id)
                raise

        for item in paginate(fetch, {"limit": PAGE_SIZE}):
            cache.ordered = None
            trial = trial_from_json(item)
            cache.trials[trial.number] = trial
            cache.max_id_seen = max(cache.max_id_seen, trial._trial_id)
            if trial.state.is_finished():
                cache.unfinished_ids.discard(trial._trial_id)
                self._finished[trial._trial_id] = trial
            else:
                cache.unfinished_ids.add(trial._trial_id)


def _result(response: httpx.Response) -> Any:
    """The body of a success; the exception Optuna expects for an error."""
    try:
        return _decode(response)
    except ApiError as err:
        if err.status == 404:
            raise KeyError(err.message) from None
        if err.code == DUPLICATED_STUDY:
            raise DuplicatedStudyError(err.message) from None
        if err.code == TRIAL_FINISHED:
            raise UpdateFinishedTrialError(err.message) from None
        if err.status == 422:
            raise ValueError(err.message) from err
        raise
