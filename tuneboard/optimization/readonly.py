"""Optuna's storage over Tuneboard's store for viewers such as optuna-dashboard: reads only.

What it keeps, whoever drives it:

- It never writes. Every write of ``BaseStorage`` raises :class:`ReadOnlyStorageError`, so a
  viewer cannot rename a study (optuna-dashboard copies it under the new name, then deletes the
  original and its per-epoch metrics), delete one, or change attributes, trials and notes.
  Changes go through the API, which authenticates and audits them.
- It sees one team (``team_id``; None: the whole store). Other teams' studies and trials do not
  exist for it: they raise ``KeyError``, as a missing study does.
- A study's Optuna name is its own name (``studies.name``, not the internal ``optuna_name``).
  Names may repeat within a team, so a repeated one reads ``"name #<id>"``: optuna-dashboard
  loads studies by name (plots, CSV), and name and id must map one to one.
- ``study:metric_names`` (what ``Study.metric_names`` reads) holds the spec's metrics when the
  study has a spec and did not set names itself. A study's objective never changes once it is
  submitted (extending it changes its budget only), so they are worked out once per study.
- Trials carry our own columns (``TRIAL_FIELDS``) as user attributes, over any of the same
  name. They are read on every call: unlike the Optuna fields that ``SqlStorage`` caches, they
  change after a trial has finished (its verdict). The cached ``FrozenTrial``\\s are shared by
  the process, so they are decorated as copies, never in place.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Container, Sequence
from typing import Any, NoReturn

import sqlalchemy as sa
from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.study._frozen import FrozenStudy
from optuna.trial import FrozenTrial, TrialState

from tuneboard.db.engine import READ_ONLY_OPTION, get_engine
from tuneboard.db.models import STUDIES as _STUDIES
from tuneboard.db.models import TRIALS as _TRIALS
from tuneboard.errors import Forbidden
from tuneboard.optimization.storage import SqlStorage
from tuneboard.spec import StudySpec

__all__ = ["READ_ONLY_MESSAGE", "TRIAL_FIELDS", "ReadOnlyStorage", "ReadOnlyStorageError"]

READ_ONLY_MESSAGE = "tuneboard dashboard is read-only: change studies through the Tuneboard API"
# Optuna's own key for the metric names (``optuna.study.study._SYSTEM_ATTR_METRIC_NAMES``).
METRIC_NAMES_ATTR = "study:metric_names"

# Our trial columns shown as user attributes, by their column names; a None is left out.
TRIAL_FIELDS = ("epochs_run", "device", "attempt", "accepted", "verdict")
_FIELD_COLUMNS = tuple(_TRIALS.c[name] for name in TRIAL_FIELDS)


class ReadOnlyStorageError(Forbidden):
    """A write through a read-only storage."""

    def __init__(self, action: str) -> None:
        super().__init__(READ_ONLY_MESSAGE, {"refused": action})


def _refuse(action: str) -> NoReturn:
    raise ReadOnlyStorageError(action)


class ReadOnlyStorage(BaseStorage):
    """The reads of :class:`SqlStorage` over the database at ``url``, for ``team_id``'s studies
    (None: every study), with the study's own name, its metric names and our trial fields."""

    def __init__(self, url: str, *, team_id: int | None = None) -> None:
        self._storage = SqlStorage(url)
        self._team_id = team_id
        self._reader = get_engine(self._storage.url).execution_options(
            **{READ_ONLY_OPTION: True}
        )
        self._lock = threading.Lock()
        self._metric_names: dict[int, list[str] | None] = {}

    # --- What this storage shows ---

    def _scope(self, query: sa.Select[Any]) -> sa.Select[Any]:
        if self._team_id is None:
            return query
        return query.where(_STUDIES.c.team_id == self._team_id)

    def _names(self) -> dict[int, str]:
        """The shown name of every study in scope, by id."""
        query = self._scope(sa.select(_STUDIES.c.id, _STUDIES.c.name).order_by(_STUDIES.c.id))
        with self._reader.connect() as conn:
            rows = conn.execute(query).all()
        counts = Counter(name for _, name in rows)
        return {
            study_id: name if counts[name] == 1 else f"{name} #{study_id}"
            for study_id, name in rows
        }

    def _require(self, study_id: int) -> None:
        query = self._scope(sa.select(_STUDIES.c.id).where(_STUDIES.c.id == study_id))
        with self._reader.connect() as conn:
            if conn.execute(query).first() is None:
                raise KeyError(f"No study with study_id {study_id} exists.")

    def _with_metric_names(self, study_id: int, system_attrs: dict[str, Any]) -> dict[str, Any]:
        if METRIC_NAMES_ATTR in system_attrs:
            return system_attrs
        names = self._spec_metrics(study_id)
        return system_attrs if names is None else {**system_attrs, METRIC_NAMES_ATTR: names}

    def _spec_metrics(self, study_id: int) -> list[str] | None:
        with self._lock:
            if study_id in self._metric_names:
                return self._metric_names[study_id]
        query = sa.select(_STUDIES.c.spec).where(_STUDIES.c.id == study_id)
        with self._reader.connect() as conn:
            spec = conn.execute(query).scalar_one_or_none()
        names = None if spec is None else list(StudySpec.model_validate(spec).metrics)
        with self._lock:
            self._metric_names[study_id] = names
        return names

    def _fields(self, where: sa.ColumnElement[bool]) -> dict[int, dict[str, Any]]:
        """Our trial fields as user attributes, by trial id, for the trials ``where`` picks."""
        query = sa.select(_TRIALS.c.id, *_FIELD_COLUMNS).where(where)
        with self._reader.connect() as conn:
            rows = conn.execute(query).all()
        return {
            row[0]: {
                name: value
                for name, value in zip(TRIAL_FIELDS, row[1:], strict=True)
                if value is not None
            }
            for row in rows
        }

    @staticmethod
    def _decorated(trial: FrozenTrial, fields: dict[str, Any]) -> FrozenTrial:
        shown = copy.copy(trial)
        shown.user_attrs = {**trial.user_attrs, **fields}
        return shown

    def _trial_in_scope(self, trial_id: int) -> dict[str, Any]:
        """Our fields of the trial; ``KeyError`` if it is not in a study in scope."""
        query = self._scope(
            sa.select(_TRIALS.c.id, *_FIELD_COLUMNS)
            .join(_STUDIES, _STUDIES.c.id == _TRIALS.c.study_id)
            .where(_TRIALS.c.id == trial_id)
        )
        with self._reader.connect() as conn:
            row = conn.execute(query).one_or_none()
        if row is None:
            raise KeyError(f"No trial with trial_id {trial_id} exists.")
        return {
            name: value for name, value in zip(TRIAL_FIELDS, row[1:], strict=True)
            if value is not None
        }

    # --- Studies: reads ---

    def get_all_studies(self) -> list[FrozenStudy]:
        names = self._names()
        return [
            FrozenStudy(
                study_name=names[study._study_id],
                direction=None,
                directions=study.directions,
                user_attrs=study.user_attrs,
                system_attrs=self._with_metric_names(study._study_id, study.system_attrs),
                study_id=study._study_id,
            )
            for study in self._storage.get_all_studies()
            if study._study_id in names
        ]

    def get_study_id_from_name(self, study_name: str) -> int:
        for study_id, name in self._names().items():
            if name == study_name:
                return study_id
        raise KeyError(f"No study with name '{study_name}' exists.")

    def get_study_name_from_id(self, study_id: int) -> str:
        name = self._names().get(study_id)
        if name is None:
            raise KeyError(f"No study with study_id {study_id} exists.")
        return name

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        self._require(study_id)
        return self._storage.get_study_directions(study_id)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        self._require(study_id)
        return self._storage.get_study_user_attrs(study_id)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        self._require(study_id)
        return self._with_metric_names(study_id, self._storage.get_study_system_attrs(study_id))

    # --- Trials: reads ---

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        self._require(study_id)
        trials = self._storage.get_all_trials(study_id, deepcopy=deepcopy, states=states)
        fields = self._fields(_TRIALS.c.study_id == study_id)
        return [self._decorated(t, fields.get(t._trial_id, {})) for t in trials]

    def get_trial(self, trial_id: int) -> FrozenTrial:
        fields = self._trial_in_scope(trial_id)
        return self._decorated(self._storage.get_trial(trial_id), fields)

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        self._require(study_id)
        return self._storage.get_trial_id_from_study_id_trial_number(study_id, trial_number)

    def get_trial_param(self, trial_id: int, param_name: str) -> float:
        self._trial_in_scope(trial_id)
        return self._storage.get_trial_param(trial_id, param_name)

    def get_n_trials(
        self, study_id: int, state: tuple[TrialState, ...] | TrialState | None = None
    ) -> int:
        self._require(study_id)
        return self._storage.get_n_trials(study_id, state)

    def get_best_trial(self, study_id: int) -> FrozenTrial:
        self._require(study_id)
        best = self._storage.get_best_trial(study_id)
        fields = self._fields(_TRIALS.c.id == best._trial_id)
        return self._decorated(best, fields.get(best._trial_id, {}))

    # --- Every write is refused ---

    def create_new_study(
        self, directions: Sequence[StudyDirection], study_name: str | None = None
    ) -> int:
        _refuse("create a study")

    def delete_study(self, study_id: int) -> None:
        _refuse("delete a study")

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        _refuse("set a study's user attribute")

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        _refuse("set a study's system attribute")

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        _refuse("create a trial")

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
    ) -> None:
        _refuse("set a trial's parameter")

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        _refuse("set a trial's state and values")

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        _refuse("report a trial's intermediate value")

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        _refuse("set a trial's user attribute")

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        _refuse("set a trial's system attribute")
