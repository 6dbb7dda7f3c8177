"""Optuna over HTTP: what ``tuneboard.client.optuna.RemoteStorage`` (an Optuna
``BaseStorage``) needs, scoped to the key's team. Viewers read; members write.

The payloads are the wire format ``tuneboard.client.optuna`` defines (non-finite floats as
"nan"/"inf"/"-inf", ISO datetimes with offsets, states by Optuna's names). Optuna's
operations run on ``SqlStorage`` in transactions of its own; each route checks the team's scope
first, in a read-only session, and writes our own columns (team, standard, verdict, audit)
through ``SessionDep`` only after the storage call has committed (see
``tuneboard.studies.remote``). Optuna's exceptions become 404 (unknown, or another team's),
409 ``duplicated_study`` / ``trial_finished`` and 422.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Annotated, Any, Literal, get_args

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response, status
from optuna.distributions import json_to_distribution
from optuna.trial import TrialState
from pydantic import BaseModel, BeforeValidator, Field, WithJsonSchema
from sqlalchemy.orm import Session

from api.deps import API_PREFIX, STUDY_CAPS, Member, SessionDep, StorageDep, Viewer, unit_of_work
from api.openapi import ERRORS
from api.pagination import Cursor, CursorKey, Limit, decode_cursor, page
from tuneboard.client.optuna import decode, decode_float, trial_from_json, trial_to_json
from tuneboard.db.models import Study
from tuneboard.errors import InvalidInput, NotFound
from tuneboard.spec import Direction, JsonFloat, JsonInt
from tuneboard.studies import remote
from tuneboard.studies.remote_repository import StudyScope, TrialScope

router = APIRouter(prefix=f"{API_PREFIX}/optuna", tags=["optuna"], responses=ERRORS)


def _wire_float(value: Any) -> Any:
    return decode_float(value) if value in ("nan", "inf", "-inf") else value


# A number, or one of the strings the wire format writes non-finite floats as.
WireFloat = Annotated[JsonFloat, BeforeValidator(_wire_float), WithJsonSchema(
    {"anyOf": [{"type": "number"}, {"enum": ["nan", "inf", "-inf"]}]}
)]
OptunaState = Literal["WAITING", "RUNNING", "COMPLETE", "PRUNED", "FAIL"]


class CreateStudy(BaseModel):
    directions: list[Direction] = Field(min_length=1, max_length=100)
    study_name: str = Field(max_length=480)


class Attr(BaseModel):
    key: str = Field(max_length=1000)
    value: Any = None


class CreateTrial(BaseModel):
    template: dict[str, Any] | None = Field(
        None,
        description="A trial as `GET /optuna/trials/{id}` shows one; null: a running trial",
        json_schema_extra={"required": ["state", "params", "distributions"], "properties": {
            "state": {"enum": list(get_args(OptunaState))},
            "params": {"type": "object"},
            "distributions": {"type": "object", "additionalProperties": {"type": "string"}},
        }},
    )


class SetParam(BaseModel):
    name: str = Field(max_length=1000)
    value: WireFloat = Field(description="The internal representation (a choice's index)")
    distribution: str = Field(max_length=100_000, description="`distribution_to_json`")


class SetState(BaseModel):
    state: OptunaState
    values: list[WireFloat] | None = Field(None, max_length=100)


class SetIntermediate(BaseModel):
    step: JsonInt = Field(ge=-(2**53), le=2**53)
    value: WireFloat


class Sync(BaseModel):
    after_id: JsonInt = Field(-1, description="The highest trial id the client has seen")
    unfinished_ids: list[JsonInt] = Field(
        default_factory=list, max_length=100_000, description="Trials it saw unfinished"
    )


Reader = Callable[[], AbstractContextManager[Session]]


def get_reader(request: Request) -> Reader:
    """Short read-only units of work, ended before the storage call: on SQLite they never take
    the write lock that call needs, and no request holds two pooled connections at once."""
    return functools.partial(unit_of_work, request.app.state.read_session_factory)


ReadDep = Annotated[Reader, Depends(get_reader)]


def _study_scope(read: Reader, team_id: int, study_id: int) -> StudyScope:
    """The team's study (else 404), read in a unit of work that ends before the storage call."""
    with read() as db:
        return remote.study_scope(db, team_id, study_id)


def _trial_scope(read: Reader, team_id: int, trial_id: int) -> TrialScope:
    """The team's trial (else 404), read in a unit of work that ends before the storage call."""
    with read() as db:
        return remote.trial_scope(db, team_id, trial_id)


def _json(payload: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status_code, media_type="application/json")


def _study_json(team_id: int, study: Study) -> dict[str, Any]:
    return {
        "study_id": study.id,
        "study_name": remote.client_name(team_id, study.optuna_name),
        "directions": [d.value for d in study.directions],
        "user_attrs": study.user_attrs or {},  # the store keeps the wire's encoding
        "system_attrs": study.system_attrs or {},
    }


# --- studies --------------------------------------------------------------------------------


@router.post(
    "/studies",
    status_code=status.HTTP_201_CREATED,
    summary="Create a study (Optuna's create_new_study)",
    dependencies=[STUDY_CAPS],
)
def create_study(session: SessionDep, principal: Member, body: CreateStudy) -> dict[str, int]:
    study = remote.create_study(
        session, principal.team_id, principal.actor, body.directions, body.study_name
    )
    return {"study_id": study.id}


@router.get("/studies", summary="The team's studies, oldest first")
def list_studies(
    session: SessionDep, principal: Viewer, limit: Limit, after: CursorKey
) -> Response:
    rows = remote.list_studies(session, principal.team_id, limit=limit + 1, after_id=after)
    items, next_cursor = page(rows, limit, lambda s: (s.id,))
    return _json({"items": [_study_json(principal.team_id, s) for s in items],
                  "next_cursor": next_cursor})


@router.get("/studies/by-name", summary="A study's id from its name")
def study_by_name(
    session: SessionDep, principal: Viewer, name: Annotated[str, Query(max_length=480)]
) -> dict[str, int]:
    return {"study_id": remote.study_id_by_name(session, principal.team_id, name)}


@router.get("/studies/{study_id}", summary="A study: name, directions, attributes")
def get_study(session: SessionDep, principal: Viewer, study_id: int) -> Response:
    return _json(_study_json(principal.team_id, remote.get_study(session, principal.team_id,
                                                                  study_id)))


@router.delete(
    "/studies/{study_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a study created through Optuna",
)
def delete_study(
    read: ReadDep,
    session: SessionDep,
    storage: StorageDep,
    principal: Member,
    study_id: int,
) -> None:
    with read() as db:
        remote.check_deletable(db, principal.team_id, study_id)
    with remote.optuna_errors():
        storage.delete_study(study_id)
    remote.record_deletion(session, principal.team_id, principal.actor, study_id)


@router.post(
    "/studies/{study_id}/user_attrs",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a study user attribute",
    description=f"`{remote.STANDARD_ATTR}` (\"name\" or \"name@N\") pins a standard of the "
    "team for the study's trials (422 when there is no such standard).",
)
def set_study_user_attr(
    read: ReadDep,
    session: SessionDep,
    storage: StorageDep,
    principal: Member,
    study_id: int,
    body: Attr,
) -> None:
    if body.key == remote.STANDARD_ATTR:
        remote.set_standard(session, principal.team_id, principal.actor, study_id, body.value)
        return
    _study_scope(read, principal.team_id, study_id)
    with remote.optuna_errors():
        storage.set_study_user_attr(study_id, body.key, decode(body.value))


@router.post(
    "/studies/{study_id}/system_attrs",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a study system attribute",
)
def set_study_system_attr(
    read: ReadDep, storage: StorageDep, principal: Member, study_id: int, body: Attr
) -> None:
    _study_scope(read, principal.team_id, study_id)
    with remote.optuna_errors():
        storage.set_study_system_attr(study_id, body.key, decode(body.value))


# --- trials ---------------------------------------------------------------------------------


@router.post(
    "/studies/{study_id}/trials",
    status_code=status.HTTP_201_CREATED,
    summary="Create a trial, running or from a template (Optuna's create_new_trial)",
)
def create_trial(
    read: ReadDep,
    session: SessionDep,
    storage: StorageDep,
    principal: Member,
    study_id: int,
    body: CreateTrial,
) -> dict[str, int]:
    template = None
    if body.template is not None:
        try:
            template = trial_from_json(body.template)
        except (KeyError, ValueError, TypeError, AttributeError) as err:
            raise InvalidInput.at("template", f"not a trial: {err!r}") from None
    with read() as db:
        scope = remote.study_scope(db, principal.team_id, study_id)
        for name, value in (template.params if template else {}).items():
            remote.check_param(db, scope.standard_version_id, name, value)
    with remote.optuna_errors():
        trial_id = storage.create_new_trial(study_id, template)
    if template is not None and template.state.is_finished():
        created = TrialScope(trial_id, study_id, scope.standard_version_id)
        remote.judge(session, created, storage.get_trial(trial_id))
    return {"trial_id": trial_id}


@router.get(
    "/studies/{study_id}/trials/by-number/{number}", summary="A trial's id from its number"
)
def trial_by_number(
    read: ReadDep, storage: StorageDep, principal: Viewer, study_id: int, number: int
) -> dict[str, int]:
    _study_scope(read, principal.team_id, study_id)
    if not 0 <= number <= remote.MAX_ID:
        raise NotFound(f"No trial with trial number {number} exists.")
    with remote.optuna_errors():
        return {"trial_id": storage.get_trial_id_from_study_id_trial_number(study_id, number)}


@router.post(
    "/studies/{study_id}/trials/sync",
    summary="The trials a client has not seen finished",
    description="Trials with an id above `after_id`, and those of `unfinished_ids`, by id. "
    "Within a study trial ids grow in commit order, so a client that keeps the finished trials "
    "it has seen needs nothing else.",
)
def sync_trials(
    read: ReadDep,
    storage: StorageDep,
    principal: Viewer,
    study_id: int,
    body: Sync,
    limit: Limit,
    cursor: Cursor = None,
) -> Response:
    _study_scope(read, principal.team_id, study_id)
    (after_page,) = decode_cursor(cursor, int) if cursor else (-1,)
    unfinished = set(body.unfinished_ids)
    with remote.optuna_errors():
        trials = storage.get_all_trials(study_id, deepcopy=False)
    changed = sorted(
        (t for t in trials if t._trial_id > after_page
         and (t._trial_id > body.after_id or t._trial_id in unfinished)),
        key=lambda t: t._trial_id,
    )
    items, next_cursor = page(changed[: limit + 1], limit, lambda t: (t._trial_id,))
    return _json({"items": [trial_to_json(t) for t in items], "next_cursor": next_cursor})


@router.get("/trials/{trial_id}", summary="One trial")
def get_trial(
    read: ReadDep, storage: StorageDep, principal: Viewer, trial_id: int
) -> Response:
    _trial_scope(read, principal.team_id, trial_id)
    with remote.optuna_errors():
        return _json(trial_to_json(storage.get_trial(trial_id)))


@router.post(
    "/trials/{trial_id}/params",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a trial's parameter",
    description="422 `standard_violation`, naming the rule and its rationale, when the study's "
    "standard does not admit the value.",
)
def set_trial_param(
    read: ReadDep, storage: StorageDep, principal: Member, trial_id: int, body: SetParam
) -> None:
    try:
        distribution = json_to_distribution(body.distribution)
        external = distribution.to_external_repr(body.value)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as err:
        reason = f"not a distribution for this value: {err!r}"
        raise InvalidInput.at("distribution", reason) from None
    with read() as db:
        scope = remote.trial_scope(db, principal.team_id, trial_id)
        remote.check_param(db, scope.standard_version_id, body.name, external)
    with remote.optuna_errors():
        storage.set_trial_param(trial_id, body.name, body.value, distribution)


@router.post("/trials/{trial_id}/state", summary="Set a trial's state and values")
def set_trial_state(
    read: ReadDep,
    session: SessionDep,
    storage: StorageDep,
    principal: Member,
    trial_id: int,
    body: SetState,
) -> dict[str, bool]:
    scope = _trial_scope(read, principal.team_id, trial_id)
    state = TrialState[body.state]
    with remote.optuna_errors():
        updated = storage.set_trial_state_values(trial_id, state, body.values)
    if updated and state.is_finished():
        remote.judge(session, scope, storage.get_trial(trial_id))
    return {"updated": updated}


@router.post(
    "/trials/{trial_id}/intermediate_values",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Report an intermediate value",
)
def set_intermediate_value(
    read: ReadDep,
    storage: StorageDep,
    principal: Member,
    trial_id: int,
    body: SetIntermediate,
) -> None:
    _trial_scope(read, principal.team_id, trial_id)
    with remote.optuna_errors():
        storage.set_trial_intermediate_value(trial_id, body.step, body.value)


@router.post(
    "/trials/{trial_id}/user_attrs",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a trial user attribute",
)
def set_trial_user_attr(
    read: ReadDep, storage: StorageDep, principal: Member, trial_id: int, body: Attr
) -> None:
    _trial_scope(read, principal.team_id, trial_id)
    with remote.optuna_errors():
        storage.set_trial_user_attr(trial_id, body.key, decode(body.value))


@router.post(
    "/trials/{trial_id}/system_attrs",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a trial system attribute",
)
def set_trial_system_attr(
    read: ReadDep, storage: StorageDep, principal: Member, trial_id: int, body: Attr
) -> None:
    _trial_scope(read, principal.team_id, trial_id)
    with remote.optuna_errors():
        storage.set_trial_system_attr(trial_id, body.key, decode(body.value))


__all__ = ["router"]
