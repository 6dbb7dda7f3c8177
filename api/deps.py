"""Dependencies that routes declare in their signatures.

``SessionDep``: one session per request, committed when the route returns and rolled back when
it raises; database errors become our errors here (tasks are sent by ``tuneboard.queue`` after
the commit). ``CurrentPrincipal``: the Bearer key's team and role, or 401. ``Viewer``,
``Member``, ``Maintainer``, ``Admin``: the principal if its role is at least that, else 403.
``StudyDep``: the path's study if it belongs to the caller's team, else 404.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from api.errors import translate_db_error
from api.ratelimit import (
    RateLimiter,
    check_running_trials_cap,
    check_studies_per_hour_cap,
    client_address,
)
from tuneboard.config import Settings
from tuneboard.db import describe_db_error
from tuneboard.db.models import Study
from tuneboard.errors import Forbidden, Unauthorized
from tuneboard.optimization import SqlStorage
from tuneboard.studies import service as studies
from tuneboard.teams import Principal, authenticate, has_role

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"

# Ids are 32-bit integer columns; a larger id cannot exist (and must not reach the driver).
MAX_ID = 2**31 - 1


# Dependencies that only read what the app holds are ``async``: a plain ``def`` one would be run
# on the thread pool, a hand-over and back for each, on every request.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


@functools.lru_cache(maxsize=8)
def _storage(url: str) -> SqlStorage:
    return SqlStorage(url)


def get_storage(settings: SettingsDep) -> SqlStorage:
    """Optuna's storage over the app's database, one for the process."""
    return _storage(settings.database_url)


StorageDep = Annotated[SqlStorage, Depends(get_storage)]


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits at the end and turns database errors into ours."""
    session = factory()
    try:
        yield session
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        log.warning("database error: %s", describe_db_error(exc))
        raise translate_db_error(exc) from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_session(request: Request) -> Iterator[Session]:
    state = request.app.state
    read = request.method in READ_METHODS
    factory = state.read_session_factory if read else state.session_factory
    with unit_of_work(factory) as session:
        yield session


# scope="function": the commit happens before the response is sent, so a client that got a 201
# can read what it created, and a failed commit is an error response rather than a lie.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key: `Authorization: Bearer tb_...` (`tuneboard team create`).",
)


def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    # One read of its own, so that routes working outside the request's session (importance,
    # events) never wait on it; a statement in autocommit, with no transaction around it.
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing API key: send Authorization: Bearer <key>")
    limiter: RateLimiter = request.app.state.rate_limiter
    address = client_address(request)
    limiter.check_not_locked_out(address)
    try:
        with unit_of_work(request.app.state.auth_session_factory) as session:
            principal = authenticate(session, credentials.credentials)
    except Unauthorized:
        limiter.record_auth_failure(address)
        raise
    limiter.hit_key(principal.key_id)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_role(role: str) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: CurrentPrincipal) -> Principal:
        if not has_role(principal, role):
            raise Forbidden(
                f"this needs the {role} role; the key has {principal.role}",
                {"required": role, "role": principal.role},
            )
        return principal

    check.__name__ = f"require_{role}"
    return check


Viewer = Annotated[Principal, Depends(require_role("viewer"))]
Member = Annotated[Principal, Depends(require_role("member"))]
Maintainer = Annotated[Principal, Depends(require_role("maintainer"))]
Admin = Annotated[Principal, Depends(require_role("admin"))]


def within_trial_caps(session: SessionDep, principal: Member, settings: SettingsDep) -> None:
    check_running_trials_cap(session, settings, principal.team_id)


def within_study_caps(session: SessionDep, principal: Member, settings: SettingsDep) -> None:
    check_studies_per_hour_cap(session, settings, principal.team_id)
    check_running_trials_cap(session, settings, principal.team_id)


# For a route's ``dependencies``: 429 while the team is at a cap (see ``api.ratelimit``).
TRIAL_CAPS = Depends(within_trial_caps)
STUDY_CAPS = Depends(within_study_caps)

StudyId = Annotated[int, Path(ge=1, le=MAX_ID, description="The study's id.")]
TrialNumber = Annotated[int, Path(ge=0, le=MAX_ID, description="The trial's number in its study.")]


def get_study(session: SessionDep, principal: Viewer, study_id: StudyId) -> Study:
    return studies.get_study(session, principal, study_id)


StudyDep = Annotated[Study, Depends(get_study)]


def get_study_detached(request: Request, principal: Viewer, study_id: StudyId) -> Study:
    with unit_of_work(request.app.state.session_factory) as session:
        return studies.get_study(session, principal, study_id)


# The study, read in a transaction that has ended: for long routes that open their own.
DetachedStudyDep = Annotated[Study, Depends(get_study_detached)]
