"""Optuna's storage over Tuneboard's own tables (``studies``, ``trials``).

Optuna's samplers, pruners, ``fail_stale_trials``, importance evaluators and visualisations
run on our data through :class:`SqlStorage`. A trial is one row: params, distributions,
values and intermediate values are JSON on it, so a whole study is one indexed read, never a
read of per-value rows (``trial_metrics`` is for curves and is not touched here).

Finished trials never change, so each process keeps them in a cache shared by every
``SqlStorage`` of a database and reads only what changed since: trials with a higher id
than any it has seen, and those it saw unfinished. That relies on two invariants of the store:

- ids are never reused (``sqlite_autoincrement``, PostgreSQL sequences);
- within a study, trial ids grow in commit order: every writer bumps
  ``studies.next_trial_number`` (which locks the study row) before it inserts trials.

Also, nothing may change a finished trial's Optuna fields (state, values, params, attributes,
intermediate values); our own columns (verdict, epochs_run, ...) are not part of the cache.

Timestamps are naive UTC in the database and naive local time in Optuna's objects (Optuna
uses ``datetime.now()``). Non-finite floats are stored in JSON as "nan", "inf" and "-inf", by
the codec of the HTTP API's wire format (``tuneboard.client.optuna``), so the two agree.

The database must be at the head of our migrations: ``SqlStorage`` refuses any other
(:func:`check_schema`) and never creates tables, unlike Optuna's ``RDBStorage``, which writes
its own into whatever database its URL names.
"""

from __future__ import annotations

import bisect
import copy
import functools
import gc
import json
import math
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import attrgetter
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

import optuna
import orjson
import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from optuna.distributions import (
    BaseDistribution,
    check_distribution_compatibility,
    distribution_to_json,
    json_to_distribution,
)
from optuna.exceptions import DuplicatedStudyError, UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.storages._base import DEFAULT_STUDY_NAME_PREFIX
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.study import StudyDirection
from optuna.study._frozen import FrozenStudy
from optuna.trial import FrozenTrial, TrialState

from tuneboard.client.optuna import decode, encode, encode_float
from tuneboard.db.base import utcnow
from tuneboard.db.engine import READ_ONLY_OPTION, get_engine, is_sqlite, normalize_url
from tuneboard.db.migrate import alembic_config
from tuneboard.db.models import STUDIES as _STUDIES
from tuneboard.db.models import TRIALS as _TRIALS
from tuneboard.db.models import Trial
from tuneboard.db.queries import allocate_trial_numbers, ranked_trials
from tuneboard.errors import Unavailable
from tuneboard.spec import states

FailedTrialCallback = Callable[["optuna.Study", FrozenTrial], None]


def _as_text(column: sa.Column[Any]) -> sa.Label[str]:
    return sa.cast(column, sa.Text).label(column.name)


# Everything a FrozenTrial needs, in the order _frozen_trial unpacks it. JSON comes as text:
# parsing it in one call per row is most of what a cold start costs.
_TRIAL_COLUMNS = (
    _TRIALS.c.id,
    _TRIALS.c.number,
    sa.type_coerce(_TRIALS.c.state, sa.String).label("state"),  # as text: _OPTUNA_STATE maps it
    _as_text(_TRIALS.c["values"]),  # ``.c.values`` is the collection's method
    _as_text(_TRIALS.c.params),
    _as_text(_TRIALS.c.distributions),
    _as_text(_TRIALS.c.intermediate_values),
    _as_text(_TRIALS.c.user_attrs),
    _as_text(_TRIALS.c.system_attrs),
    _TRIALS.c.datetime_start,
    _TRIALS.c.datetime_complete,
)

_DB_STATE = {state: states.TrialState(state.name.lower()) for state in TrialState}
_OPTUNA_STATE = {name: state for state, name in _DB_STATE.items()}
_DIRECTION_NAMES = {StudyDirection.MINIMIZE: "minimize", StudyDirection.MAXIMIZE: "maximize"}
_DIRECTIONS = {name: direction for direction, name in _DIRECTION_NAMES.items()}
_NUMBER = attrgetter("number")


# --- Time conversions ---------------------------------------------------------------------


def _to_utc(local: datetime | None) -> datetime | None:
    return None if local is None else local.astimezone(UTC).replace(tzinfo=None)


def _to_local(utc: datetime | None) -> datetime | None:
    return None if utc is None else utc.replace(tzinfo=UTC).astimezone().replace(tzinfo=None)


def _same(value: datetime | None) -> datetime | None:
    return value


def _local_time_converter() -> Callable[[datetime | None], datetime | None]:
    # Converting 20k trials' times costs ~0.1 s; servers usually run in UTC, where it's a no-op.
    return _same if time.timezone == 0 and time.altzone == 0 else _to_local


def _loads(text: str) -> Any:
    """orjson is five times faster on cold-start batches; it refuses what plain JSON allows
    (integers beyond 64 bits in user attributes), and those fall back to the standard parser."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


@functools.lru_cache(maxsize=4096)
def _distribution(text: str) -> BaseDistribution:
    return json_to_distribution(text)


@functools.lru_cache(maxsize=1024)
def _distributions(text: str) -> dict[str, BaseDistribution]:
    """A trial's distributions column, parsed once: most trials of a study share it."""
    return {name: _distribution(item) for name, item in json.loads(text).items()}


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: its passes over a heap growing by 20k trials (which
    hold no cycles) would cost a third of a cold start."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _frozen_trials(
    rows: Sequence[Sequence[Any]], to_local: Callable[[datetime | None], datetime | None]
) -> list[FrozenTrial]:
    """FrozenTrials from rows of _TRIAL_COLUMNS."""
    with _gc_paused():
        # One parse for the whole batch: per-call overhead alone would double the cost.
        documents = _loads(
            "[" + ",".join(f"[{r[3] or 'null'},{r[4]},{r[6]},{r[7]},{r[8]}]" for r in rows) + "]"
        )
        return [
            _frozen_trial(row, document, to_local)
            for row, document in zip(rows, documents, strict=True)
        ]


def _frozen_trial(
    row: Sequence[Any],
    document: list[Any],
    to_local: Callable[[datetime | None], datetime | None],
) -> FrozenTrial:
    # Rows may carry more columns after _TRIAL_COLUMNS; the JSON ones are in ``document``.
    trial_id, number, state, dists = row[0], row[1], row[2], row[5]
    datetime_start, datetime_complete = row[9], row[10]
    values, params, steps, user_attrs, system_attrs = document
    distributions = dict(_distributions(dists))
    return FrozenTrial(
        number=number,
        state=_OPTUNA_STATE[state],
        value=None,
        values=None if values is None else [float(v) for v in values],
        datetime_start=to_local(datetime_start),
        datetime_complete=to_local(datetime_complete),
        params={name: distributions[name].to_external_repr(float(v)) for name, v in params.items()},
        distributions=distributions,
        user_attrs=decode(user_attrs) if user_attrs else {},
        system_attrs=decode(system_attrs) if system_attrs else {},
        intermediate_values=dict(zip(map(int, steps), map(float, steps.values()), strict=True)),
        trial_id=trial_id,
    )


def _check_updatable(number: int, db_state: str) -> None:
    if states.TrialState(db_state).is_finished():
        raise UpdateFinishedTrialError(
            f"Trial#{number} has already finished and can not be updated."
        )


# --- The process-wide cache ----------------------------------------------------------------


@dataclass
class _StudyCache:
    """What this process knows of one study."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    # The study row's created_at: if it differs, the id was reused by a recreated database.
    created_at: datetime | None = None
    directions: list[StudyDirection] | None = None
    finished: list[FrozenTrial] = field(default_factory=list)  # sorted by number
    max_id_seen: int = 0
    unfinished_ids: set[int] = field(default_factory=set)
    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    # When the trials were last read (time.monotonic), and the unfinished ones then.
    read_at: float = -math.inf
    unfinished: list[FrozenTrial] = field(default_factory=list)
    # ``finished`` in some states only, by the set of states, until ``finished`` changes: a
    # pruner asks for the complete trials at every report.
    by_states: dict[frozenset[TrialState], list[FrozenTrial]] = field(default_factory=dict)

    def finished_in(self, states: frozenset[TrialState] | None) -> list[FrozenTrial]:
        """The finished trials (None: in any state), sorted by number; the caller's copy."""
        if states is None:
            return list(self.finished)
        found = self.by_states.get(states)
        if found is None:
            found = self.by_states[states] = [t for t in self.finished if t.state in states]
        return list(found)

    def take(self, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        """Keep the finished ones of trials just read; returns the unfinished ones."""
        finished = [t for t in trials if t.state.is_finished()]
        unfinished = [t for t in trials if not t.state.is_finished()]
        if finished:
            self.by_states.clear()
        if len(finished) > 64:
            self.finished.extend(finished)
            self.finished.sort(key=_NUMBER)
        else:
            for trial in finished:
                bisect.insort(self.finished, trial, key=_NUMBER)
        self.unfinished_ids = {t._trial_id for t in unfinished}
        self.read_at, self.unfinished = time.monotonic(), unfinished
        self.max_id_seen = max([self.max_id_seen, *(t._trial_id for t in trials)])
        return unfinished


class _DatabaseCache:
    """Finished trials of one database, shared by every SqlStorage of the process.

    ``lock`` guards the dictionaries and is never held during a query; a study's own lock is
    held while its trials are read, so two threads don't read the same rows twice.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.studies: dict[int, _StudyCache] = {}
        self.finished_trials: dict[int, FrozenTrial] = {}

    def study(self, study_id: int) -> _StudyCache:
        with self.lock:
            return self.studies.setdefault(study_id, _StudyCache())

    def forget_study(self, study_id: int) -> None:
        with self.lock:
            study = self.studies.pop(study_id, None)
            for trial in study.finished if study else ():
                self.finished_trials.pop(trial._trial_id, None)

    def clear(self) -> None:
        with self.lock:
            self.studies.clear()
            self.finished_trials.clear()


_caches_lock = threading.Lock()
_caches: dict[str, _DatabaseCache] = {}


def _cache_for(url: str) -> _DatabaseCache:
    with _caches_lock:
        return _caches.setdefault(url, _DatabaseCache())


# --- The schema check ----------------------------------------------------------------------


class SchemaMismatch(Unavailable):
    """The database lacks Tuneboard's schema or is behind its migrations."""


_checked_lock = threading.Lock()
_checked_urls: set[str] = set()


def check_schema(url: str) -> None:
    """Refuse a database that is not at the head of our migrations, once per URL per process.

    Nothing here writes: a missing SQLite file is not created, an empty one gets no tables (as
    Optuna's own ``RDBStorage`` would create), so a wrong URL fails here, not halfway through.
    """
    url = normalize_url(url)
    with _checked_lock:
        if url in _checked_urls:
            return
    problem = _schema_problem(url)
    if problem is not None:
        shown = sa.make_url(url).render_as_string(hide_password=True)
        raise SchemaMismatch(f"{shown} {problem}")
    with _checked_lock:
        _checked_urls.add(url)


@functools.cache
def _migrations() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(""))  # the scripts alone: no database


def _schema_problem(url: str) -> str | None:
    upgrade = "run `tuneboard db upgrade` on it"
    try:
        current = _current_revision(url)
    except FileNotFoundError:
        return "does not exist: create it with `tuneboard db upgrade`, or check the URL"
    if current is None:
        return f"has no Tuneboard schema (no migration applied): {upgrade}, or check the URL"
    heads = _migrations().get_heads()
    if current in heads:
        return None
    try:
        _migrations().get_revision(current)
    except CommandError:
        return (
            f"is at migration {current!r}, which Tuneboard's migrations do not know: a newer "
            "Tuneboard's database, or another program's (Optuna's own tables?)"
        )
    return f"is at migration {current!r}, behind this Tuneboard's {', '.join(heads)}: {upgrade}"


def _current_revision(url: str) -> str | None:
    if not is_sqlite(url):
        with get_engine(url).connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    path = sa.make_url(url).database or ""
    if not Path(path).is_file():
        raise FileNotFoundError(path)
    # Read-only: our engine's connect hook would switch an empty file to WAL, writing to it.
    uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
    engine = sa.create_engine(
        "sqlite://", creator=lambda: sqlite3.connect(uri, uri=True), poolclass=sa.NullPool
    )
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


# --- The storage ---------------------------------------------------------------------------


class SqlStorage(BaseStorage, BaseHeartbeat):
    """Optuna's ``BaseStorage`` and ``BaseHeartbeat`` over Tuneboard's database at ``url``.

    Optuna's ``study_name`` is ``studies.optuna_name``; studies created through the API work
    as well as those created here. ``heartbeat_interval``, ``grace_period`` and
    ``failed_trial_callback`` mean what they mean for Optuna's ``RDBStorage``.
    """

    def __init__(
        self,
        url: str,
        *,
        heartbeat_interval: int | None = None,
        grace_period: int | None = None,
        failed_trial_callback: FailedTrialCallback | None = None,
    ) -> None:
        if heartbeat_interval is not None and heartbeat_interval <= 0:
            raise ValueError("The value of `heartbeat_interval` should be a positive integer.")
        if grace_period is not None and grace_period <= 0:
            raise ValueError("The value of `grace_period` should be a positive integer.")
        self.url = normalize_url(url)
        self.heartbeat_interval = heartbeat_interval
        self.grace_period = grace_period
        self.failed_trial_callback = failed_trial_callback
        self._attach()

    def _attach(self) -> None:
        check_schema(self.url)  # also in a process that unpickled this storage
        self._engine = get_engine(self.url)
        # Reads never write: on SQLite they read a snapshot without taking the write lock.
        self._reader = self._engine.execution_options(**{READ_ONLY_OPTION: True})
        self._cache = _cache_for(self.url)
        self._max_age = threading.local()
        self._known = threading.local()  # see ``study_known`` and ``params_together``
        self._fresh: dict[int, FrozenTrial] = {}  # see ``remember_trial``
        self._unset: dict[int, int] = {}  # trial id -> study id, see ``remember_trial``
        # One statement, one round trip: no BEGIN and COMMIT around it on a server database.
        self._single = (self._engine if self._engine.dialect.name == "sqlite"
                        else self._engine.execution_options(isolation_level="AUTOCOMMIT"))

    @contextmanager
    def reads_up_to(self, max_age_s: float) -> Iterator[None]:
        """Within the block, this thread's reads of a study's trials are served from the cache
        when this process read them less than ``max_age_s`` ago: for the pruner, which asks for
        the finished trials at every report, and for which a second-old view is as good."""
        self._max_age.s = max_age_s
        try:
            yield
        finally:
            self._max_age.s = 0.0

    @contextmanager
    def study_known(
        self, study_name: str, study_id: int, trials: Mapping[int, int] | None = None
    ) -> Iterator[None]:
        """Within the block, this thread's ``get_study_id_from_name(study_name)`` answers
        ``study_id`` without a query: for a caller that has just read the study's row. Optuna
        looks the id up for every ``Study`` it builds, and a service builds one per request.
        ``trials`` (number -> id, of that study) answer ``get_trial_id_from_study_id_trial_number``
        the same way: what ``Study.tell(number)`` looks up first."""
        self._known.study = (study_name, study_id)
        self._known.trials = (study_id, trials or {})
        try:
            yield
        finally:
            self._known.study = self._known.trials = None

    def remember_trial(self, trial: FrozenTrial, study_id: int | None = None) -> None:
        """The next ``get_trial`` of ``trial`` (and only that one) answers with it, without a
        query: for a caller that has just claimed the trial and holds it as the claim left it
        (read in the claim's own transaction, or built by :meth:`started_trial`): a worker, an
        external ask. Until the claimant writes its parameters no one
        else changes a claimed trial, and Optuna's ``Trial`` reads it exactly once, when it is
        built. :meth:`forget_trial` drops it if the trial is never built.

        With ``study_id``, a RUNNING trial with no parameters yet gets its first ones
        (``set_trial_params``, as ``params_together`` writes them, or ``set_trial_params_in``,
        as a worker's first report batch does) in one conditional update, instead of reading
        the row under a lock first: the claim read it, and the only row state to check, that it
        still runs, is the update's condition. :meth:`forget_trial` drops that too."""
        self._fresh[trial._trial_id] = trial
        if study_id is not None and not trial.params and trial.state == TrialState.RUNNING:
            self._unset[trial._trial_id] = study_id

    def forget_trial(self, trial_id: int) -> None:
        self._fresh.pop(trial_id, None)
        self._unset.pop(trial_id, None)

    @contextmanager
    def params_together(self, trial_id: int) -> Iterator[None]:
        """Within the block, this thread's ``set_trial_param`` calls for ``trial_id`` are kept,
        and written, each checked as it would have been, in one transaction when the block ends
        without an error (nothing is written if it raises): a trial's parameters cost one write
        instead of one per parameter. Optuna's ``Trial`` keeps what it suggested in its own
        copy and never reads it back meanwhile; no one else sees the trial's parameters before
        they are all written."""
        pending: dict[str, tuple[float, BaseDistribution]] = {}
        self._known.params = (trial_id, pending)
        try:
            yield
        finally:
            self._known.params = None
        if pending:
            self.set_trial_params(trial_id, pending)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_engine"], state["_reader"], state["_cache"], state["_max_age"]
        del state["_known"], state["_fresh"], state["_unset"], state["_single"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._attach()

    @staticmethod
    def clear_cache() -> None:
        """Forget every cached trial of every database, as a new process would."""
        with _caches_lock:
            for cache in _caches.values():
                cache.clear()

    # --- Studies ---

    def create_new_study(
        self, directions: Sequence[StudyDirection], study_name: str | None = None
    ) -> int:
        if study_name is None:
            study_name = f"{DEFAULT_STUDY_NAME_PREFIX}{uuid.uuid4()}"
        row = {
            "name": study_name[:255],
            "optuna_name": study_name,
            "team_id": None,
            "state": states.StudyState.RUNNING,
            "directions": [_DIRECTION_NAMES[d] for d in directions],
        }
        try:
            with self._engine.begin() as conn:
                study_id: int = conn.execute(
                    sa.insert(_STUDIES).values(row).returning(_STUDIES.c.id)
                ).scalar_one()
        except sa.exc.IntegrityError as error:
            raise DuplicatedStudyError(
                f"Another study with name '{study_name}' already exists."
            ) from error
        return study_id

    def delete_study(self, study_id: int) -> None:
        with self._engine.begin() as conn:
            deleted = conn.execute(sa.delete(_STUDIES).where(_STUDIES.c.id == study_id)).rowcount
        self._cache.forget_study(study_id)
        if not deleted:
            raise KeyError(f"No study with study_id {study_id} exists.")

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self._set_study_json(study_id, _STUDIES.c.user_attrs, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        self._set_study_json(study_id, _STUDIES.c.system_attrs, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        known: tuple[str, int] | None = getattr(self._known, "study", None)
        if known is not None and known[0] == study_name:
            return known[1]
        query = sa.select(_STUDIES.c.id).where(_STUDIES.c.optuna_name == study_name)
        with self._reader.connect() as conn:
            study_id = conn.execute(query).scalar_one_or_none()
        if study_id is None:
            raise KeyError(f"No study with name '{study_name}' exists.")
        return int(study_id)

    def get_study_name_from_id(self, study_id: int) -> str:
        return str(self._study_column(study_id, _STUDIES.c.optuna_name))

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        cached = self._cache.studies.get(study_id)
        if cached is None or cached.directions is None:
            names = self._study_column(study_id, _STUDIES.c.directions)
            directions = [_DIRECTIONS[name] for name in names]
            self._cache.study(study_id).directions = directions
            return list(directions)
        return list(cached.directions)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return cast(dict[str, Any], decode(self._study_column(study_id, _STUDIES.c.user_attrs)))

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        attrs = self._study_column(study_id, _STUDIES.c.system_attrs)
        return cast(dict[str, Any], decode(attrs))

    def get_all_studies(self) -> list[FrozenStudy]:
        query = sa.select(
            _STUDIES.c.id,
            _STUDIES.c.optuna_name,
            _STUDIES.c.directions,
            _STUDIES.c.user_attrs,
            _STUDIES.c.system_attrs,
        ).order_by(_STUDIES.c.id)
        with self._reader.connect() as conn:
            rows = conn.execute(query).all()
        return [
            FrozenStudy(
                study_name=name,
                direction=None,
                directions=[_DIRECTIONS[d] for d in directions],
                user_attrs=decode(user_attrs),
                system_attrs=decode(system_attrs),
                study_id=study_id,
            )
            for study_id, name, directions, user_attrs, system_attrs in rows
        ]

    def _study_column(self, study_id: int, column: sa.Column[Any]) -> Any:
        with self._reader.connect() as conn:
            row = conn.execute(sa.select(column).where(_STUDIES.c.id == study_id)).one_or_none()
        if row is None:
            raise KeyError(f"No study with study_id {study_id} exists.")
        return row[0]

    def _set_study_json(self, study_id: int, column: sa.Column[Any], key: str, value: Any) -> None:
        where = _STUDIES.c.id == study_id
        with self._engine.begin() as conn:
            row = conn.execute(sa.select(column).where(where).with_for_update()).one_or_none()
            if row is None:
                raise KeyError(f"No study with study_id {study_id} exists.")
            attrs = {**row[0], key: encode(value)}
            conn.execute(sa.update(_STUDIES).where(where).values({column: attrs}))

    # --- Trials: writes ---

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        row = self._new_trial_row(template_trial)
        with self._engine.begin() as conn:
            row.update(study_id=study_id, number=allocate_trial_numbers(conn, study_id, 1))
            trial_id: int = conn.execute(
                sa.insert(_TRIALS).values(row).returning(_TRIALS.c.id)
            ).scalar_one()
        return trial_id

    def add_trials(self, study_id: int, trials: Sequence[FrozenTrial]) -> None:
        """``create_new_trial(study_id, trial)`` for each trial, in one transaction and a few
        multi-row inserts: for importing a study's history."""
        rows = [self._new_trial_row(trial) for trial in trials]
        if not rows:
            return
        with self._engine.begin() as conn:
            first = allocate_trial_numbers(conn, study_id, len(rows))
            for number, row in enumerate(rows, start=first):
                row.update(study_id=study_id, number=number)
            conn.execute(sa.insert(_TRIALS), rows)

    @staticmethod
    def _new_trial_row(template: FrozenTrial | None) -> dict[str, Any]:
        if template is None:
            return {"state": states.TrialState.RUNNING, "datetime_start": utcnow()}
        values = template.values
        return {
            "state": _DB_STATE[template.state],
            **_values_columns(values),
            "params": {
                name: encode_float(template.distributions[name].to_internal_repr(value))
                for name, value in template.params.items()
            },
            "distributions": {
                name: distribution_to_json(template.distributions[name]) for name in template.params
            },
            "intermediate_values": {
                str(step): encode_float(v) for step, v in template.intermediate_values.items()
            },
            "user_attrs": encode(template.user_attrs),
            "system_attrs": encode(template.system_attrs),
            "datetime_start": _to_utc(template.datetime_start),
            "datetime_complete": _to_utc(template.datetime_complete),
        }

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
    ) -> None:
        held: tuple[int, dict[str, tuple[float, BaseDistribution]]] | None = getattr(
            self._known, "params", None)
        if held is not None and held[0] == trial_id:
            held[1][param_name] = (param_value_internal, distribution)  # see params_together
            return
        self.set_trial_params(trial_id, {param_name: (param_value_internal, distribution)})

    def set_trial_params(
        self, trial_id: int, params: Mapping[str, tuple[float, BaseDistribution]]
    ) -> None:
        """Several parameters of a running trial, (internal value, distribution) by name, in
        one transaction: each checked against the distribution the trial or, failing that,
        another trial of the study already gave the name, as Optuna's storages check it."""
        study_id = self._unset.pop(trial_id, None)
        if study_id is not None:
            with self._single.begin() as conn:
                if self._set_first_params_in(conn, study_id, trial_id, params):
                    return
        with self._engine.begin() as conn:
            self._set_params_in(conn, trial_id, params)

    def set_trial_params_in(
        self, conn: sa.Connection, trial_id: int,
        params: Mapping[str, tuple[float, BaseDistribution]],
    ) -> None:
        """:meth:`set_trial_params` in the caller's transaction on ``conn``: for a worker that
        writes a trial's parameters with its first reports."""
        study_id = self._unset.pop(trial_id, None)
        if study_id is not None and self._set_first_params_in(conn, study_id, trial_id, params):
            return
        self._set_params_in(conn, trial_id, params)

    def first_params_columns(
        self, conn: sa.Connection, trial_id: int,
        params: Mapping[str, tuple[float, BaseDistribution]],
    ) -> dict[str, Any] | None:
        """The ``params`` and ``distributions`` columns that give a remembered trial (see
        ``remember_trial``) its first parameters, each checked as ``set_trial_params`` checks
        it, for the caller to set in an update of its own that holds only while the trial runs
        (the worker's update that records the trial's outcome). None: the trial was not
        remembered, and ``set_trial_params_in`` writes them."""
        study_id = self._unset.pop(trial_id, None)
        if study_id is None:
            return None
        columns = self._checked_first_params(conn, study_id, params)
        self._learn_distributions(study_id, params)
        return columns

    def _set_first_params_in(
        self, conn: sa.Connection, study_id: int, trial_id: int,
        params: Mapping[str, tuple[float, BaseDistribution]],
    ) -> bool:
        """The first parameters of a claimed trial that has none (see ``remember_trial``), in one
        update while it runs; False if it no longer runs (the full write then says why)."""
        written = conn.execute(
            sa.update(_TRIALS)
            .where(_TRIALS.c.id == trial_id, _TRIALS.c.state == _DB_STATE[TrialState.RUNNING])
            .values(self._checked_first_params(conn, study_id, params))
        ).rowcount
        if written != 1:
            return False
        self._learn_distributions(study_id, params)
        return True

    def _checked_first_params(
        self, conn: sa.Connection, study_id: int,
        params: Mapping[str, tuple[float, BaseDistribution]],
    ) -> dict[str, Any]:
        for name, (_, distribution) in params.items():
            previous = self._known_distribution(conn, study_id, name)
            if previous is not None:
                check_distribution_compatibility(previous, distribution)
        return {
            "params": {name: encode_float(value) for name, (value, _) in params.items()},
            "distributions": {name: distribution_to_json(distribution)
                              for name, (_, distribution) in params.items()},
        }

    def _set_params_in(
        self, conn: sa.Connection, trial_id: int,
        params: Mapping[str, tuple[float, BaseDistribution]],
    ) -> None:
        where = _TRIALS.c.id == trial_id
        query = sa.select(
            _TRIALS.c.study_id,
            _TRIALS.c.number,
            _TRIALS.c.state,
            _TRIALS.c.params,
            _TRIALS.c.distributions,
        ).where(where)
        row = conn.execute(query.with_for_update()).one_or_none()
        if row is None:
            raise KeyError(f"No trial with trial_id {trial_id} exists.")
        study_id, number, state, stored, dists = row
        _check_updatable(number, state)
        for name, (_, distribution) in params.items():
            if name in dists:
                previous: BaseDistribution | None = _distribution(dists[name])
            else:
                previous = self._known_distribution(conn, study_id, name)
            if previous is not None:
                check_distribution_compatibility(previous, distribution)
        conn.execute(
            sa.update(_TRIALS)
            .where(where)
            .values(
                params={**stored, **{name: encode_float(value)
                                     for name, (value, _) in params.items()}},
                distributions={**dists, **{name: distribution_to_json(distribution)
                                           for name, (_, distribution) in params.items()}},
            )
        )
        self._learn_distributions(study_id, params)

    def _learn_distributions(
        self, study_id: int, params: Mapping[str, tuple[float, BaseDistribution]]
    ) -> None:
        # Kept even if the caller's transaction rolls back: a distribution this process gave
        # the name is one it may check the study's later trials against.
        known = self._cache.study(study_id).distributions
        for name, (_, distribution) in params.items():
            known.setdefault(name, distribution)

    def _known_distribution(
        self, conn: sa.Connection, study_id: int, param_name: str
    ) -> BaseDistribution | None:
        """The distribution another trial of the study gave ``param_name``, if any."""
        cached = self._cache.study(study_id).distributions.get(param_name)
        if cached is not None:
            return cached
        text = _TRIALS.c.distributions[param_name].as_string()
        found = conn.execute(
            sa.select(text).where(_TRIALS.c.study_id == study_id, text.is_not(None)).limit(1)
        ).scalar_one_or_none()
        return None if found is None else _distribution(found)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        now = utcnow()
        changes: dict[str, Any] = {"state": _DB_STATE[state]}
        if values is not None:
            changes.update(_values_columns(values))
        if state == TrialState.RUNNING:
            changes["datetime_start"] = now
        if state.is_finished():
            changes["datetime_complete"] = now
        # One conditional update: of two workers claiming a WAITING trial, exactly one wins.
        from_states = (
            (states.TrialState.WAITING,) if state == TrialState.RUNNING
            else states.TrialState.active()
        )
        update = (
            sa.update(_TRIALS)
            .where(_TRIALS.c.id == trial_id, _TRIALS.c.state.in_(from_states))
            .values(changes)
            .returning(*_TRIAL_COLUMNS)
        )
        with self._engine.begin() as conn:
            row = conn.execute(update).one_or_none()
            if row is None:
                current = conn.execute(
                    sa.select(_TRIALS.c.number, _TRIALS.c.state).where(_TRIALS.c.id == trial_id)
                ).one_or_none()
        if row is None:
            if current is None:
                raise KeyError(f"No trial with trial_id {trial_id} exists.")
            _check_updatable(*current)
            return False
        if state.is_finished():
            trial = _frozen_trials([row], _local_time_converter())[0]
            with self._cache.lock:
                self._cache.finished_trials[trial_id] = trial
        return True

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        value = encode_float(intermediate_value)
        self._set_trial_json(trial_id, _TRIALS.c.intermediate_values, str(step), value)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._set_trial_json(trial_id, _TRIALS.c.user_attrs, key, encode(value))

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._set_trial_json(trial_id, _TRIALS.c.system_attrs, key, encode(value))

    def _set_trial_json(self, trial_id: int, column: sa.Column[Any], key: str, value: Any) -> None:
        where = _TRIALS.c.id == trial_id
        query = sa.select(_TRIALS.c.number, _TRIALS.c.state, column).where(where)
        with self._engine.begin() as conn:
            row = conn.execute(query.with_for_update()).one_or_none()
            if row is None:
                raise KeyError(f"No trial with trial_id {trial_id} exists.")
            number, state, document = row
            _check_updatable(number, state)
            conn.execute(sa.update(_TRIALS).where(where).values({column: {**document, key: value}}))

    # --- Trials: reads ---

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        known: tuple[int, Mapping[int, int]] | None = getattr(self._known, "trials", None)
        if known is not None and known[0] == study_id and trial_number in known[1]:
            return known[1][trial_number]
        query = sa.select(_TRIALS.c.id).where(
            _TRIALS.c.study_id == study_id, _TRIALS.c.number == trial_number
        )
        with self._reader.connect() as conn:
            trial_id = conn.execute(query).scalar_one_or_none()
        if trial_id is None:
            raise KeyError(
                f"No trial with trial number {trial_number} exists in study with study_id "
                f"{study_id}."
            )
        return int(trial_id)

    def get_trial_param(self, trial_id: int, param_name: str) -> float:
        query = sa.select(_TRIALS.c.params).where(_TRIALS.c.id == trial_id)
        with self._reader.connect() as conn:
            params = conn.execute(query).scalar_one_or_none()
        if params is None:
            raise KeyError(f"No trial with trial_id {trial_id} exists.")
        if param_name not in params:
            raise KeyError(f"Trial {trial_id} has no parameter {param_name!r}.")
        return float(params[param_name])

    def get_trial(self, trial_id: int) -> FrozenTrial:
        fresh = self._fresh.pop(trial_id, None)
        if fresh is not None:
            return fresh
        cached = self._cache.finished_trials.get(trial_id)
        if cached is not None:
            return cached
        query = sa.select(*_TRIAL_COLUMNS).where(_TRIALS.c.id == trial_id)
        with self._reader.connect() as conn:
            row = conn.execute(query).one_or_none()
        if row is None:
            raise KeyError(f"No trial with trial_id {trial_id} exists.")
        trial = _frozen_trials([row], _local_time_converter())[0]
        if trial.state.is_finished():
            with self._cache.lock:
                self._cache.finished_trials[trial_id] = trial
        return trial

    @staticmethod
    def started_trial(trial_id: int, number: int, datetime_start: datetime) -> FrozenTrial:
        """What ``get_trial`` reads of a trial inserted RUNNING at ``datetime_start`` (naive UTC)
        with no parameters, values or attributes yet: for a caller that has just inserted one
        and will ``remember_trial`` it, instead of reading back what it wrote."""
        return FrozenTrial(
            number=number, state=TrialState.RUNNING, value=None, values=None,
            datetime_start=_local_time_converter()(datetime_start), datetime_complete=None,
            params={}, distributions={}, user_attrs={}, system_attrs={}, intermediate_values={},
            trial_id=trial_id,
        )

    def get_trial_in(self, conn: sa.Connection, trial_id: int) -> FrozenTrial:
        """:meth:`get_trial` in the caller's transaction on ``conn``, never from the cache: for
        a worker that reads the trial it has just claimed in the claim's own transaction, and
        for an external report that reads the trial it has just written, for the pruner."""
        row = conn.execute(
            sa.select(*_TRIAL_COLUMNS).where(_TRIALS.c.id == trial_id)
        ).one_or_none()
        if row is None:
            raise KeyError(f"No trial with trial_id {trial_id} exists.")
        return _frozen_trials([row], _local_time_converter())[0]

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        finished_states = None if states is None else frozenset(
            s for s in _OPTUNA_STATE.values() if s.is_finished() and s in states
        )
        trials, unfinished = self._read_trials(study_id, finished_states)
        if states is not None:
            unfinished = [t for t in unfinished if t.state in states]
        for trial in unfinished:
            bisect.insort(trials, trial, key=_NUMBER)
        return copy.deepcopy(trials) if deepcopy else trials

    def _read_trials(
        self, study_id: int, finished_states: frozenset[TrialState] | None = None
    ) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
        """A copy of the study's finished trials (sorted by number; only those in
        ``finished_states`` when given) and its unfinished ones, reading only the trials this
        process has not seen finished."""
        study = self._cache.study(study_id)
        with study.lock:
            if time.monotonic() - study.read_at < getattr(self._max_age, "s", 0.0):
                return study.finished_in(finished_states), list(study.unfinished)
            with self._reader.connect() as conn:
                rows = conn.execute(self._changed_trials_query(study_id, study)).all()
            if not rows:
                self._cache.forget_study(study_id)
                raise KeyError(f"No study with study_id {study_id} exists.")
            if study.created_at not in (None, rows[0][-1]):
                # The id was reused, so the database was recreated: nothing cached is valid.
                self._cache.clear()
                return self._read_trials(study_id, finished_states)
            study.created_at = rows[0][-1]

            trial_rows = [row for row in rows if row[0] is not None]
            trials = _frozen_trials(trial_rows, _local_time_converter())
            unfinished = study.take(trials)
            with self._cache.lock:
                self._cache.finished_trials.update(
                    (t._trial_id, t) for t in trials if t.state.is_finished()
                )
            return study.finished_in(finished_states), unfinished

    @staticmethod
    def _changed_trials_query(study_id: int, study: _StudyCache) -> sa.Select[Any]:
        """The study row (none: no such study), outer-joined to the trials with a higher id
        than any seen and those seen unfinished."""
        changed = sa.or_(_TRIALS.c.id > study.max_id_seen, _TRIALS.c.id.in_(study.unfinished_ids))
        trials = _STUDIES.outerjoin(_TRIALS, sa.and_(_TRIALS.c.study_id == _STUDIES.c.id, changed))
        return (
            sa.select(*_TRIAL_COLUMNS, _STUDIES.c.created_at)
            .select_from(trials)
            .where(_STUDIES.c.id == study_id)
        )

    def get_n_trials(
        self, study_id: int, state: tuple[TrialState, ...] | TrialState | None = None
    ) -> int:
        count = sa.select(sa.func.count()).where(_TRIALS.c.study_id == study_id)
        if state is not None:
            states = (state,) if isinstance(state, TrialState) else state
            count = count.where(_TRIALS.c.state.in_([_DB_STATE[s] for s in states]))
        query = sa.select(count.scalar_subquery()).where(_STUDIES.c.id == study_id)
        with self._reader.connect() as conn:
            n = conn.execute(query).scalar_one_or_none()
        if n is None:
            raise KeyError(f"No study with study_id {study_id} exists.")
        return int(n)

    def get_best_trial(self, study_id: int) -> FrozenTrial:
        directions = self.get_study_directions(study_id)
        if len(directions) > 1:
            raise RuntimeError("Best trial can be obtained only for single-objective optimization.")
        best = ranked_trials(
            study_id, maximize=directions[0] == StudyDirection.MAXIMIZE, columns=(Trial.id,)
        )
        with self._reader.connect() as conn:
            trial_id = conn.execute(best.limit(1)).scalar_one_or_none()
            if trial_id is None:  # only NaN values: Optuna still returns a complete trial
                trial_id = conn.execute(
                    sa.select(_TRIALS.c.id)
                    .where(
                        _TRIALS.c.study_id == study_id,
                        _TRIALS.c.state == states.TrialState.COMPLETE,
                    )
                    .limit(1)
                ).scalar_one_or_none()
        if trial_id is None:
            raise ValueError("No trials are completed yet.")
        return self.get_trial(trial_id)

    # --- Heartbeats ---

    def record_heartbeat(self, trial_id: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(_TRIALS).where(_TRIALS.c.id == trial_id).values(heartbeat_at=utcnow())
            )

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        grace_period = self.grace_period
        if grace_period is None:
            assert self.heartbeat_interval is not None, "heartbeats are not enabled"
            grace_period = 2 * self.heartbeat_interval
        query = sa.select(_TRIALS.c.id).where(
            _TRIALS.c.state == states.TrialState.RUNNING,
            _TRIALS.c.heartbeat_at < utcnow() - timedelta(seconds=grace_period),
            _TRIALS.c.study_id == study_id,
        )
        with self._reader.connect() as conn:
            return list(conn.execute(query).scalars())

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> FailedTrialCallback | None:
        return self.failed_trial_callback


def _values_columns(values: Sequence[float] | None) -> dict[str, Any]:
    """``values`` as stored, and the first of them as the sortable ``value`` (NULL for NaN)."""
    if values is None:
        return {"values": sa.null(), "value": None}
    floats = [float(v) for v in values]
    first = floats[0] if floats and not math.isnan(floats[0]) else None
    return {"values": [encode_float(v) for v in floats], "value": first}
