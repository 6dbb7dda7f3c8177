"""Server-sent events for a study: an event whenever its state or trial counts change.

The stream polls the database every ``POLL_S`` seconds, each time in a short transaction of its
own (never the request's), and ends when the study is finished, after ``max_s`` seconds, or
after the first event with ``once=true``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent
from sqlalchemy.orm import Session, sessionmaker

from api.deps import API_PREFIX, DetachedStudyDep, unit_of_work
from api.openapi import ERRORS
from tuneboard.errors import TuneboardError
from tuneboard.studies import service as studies
from tuneboard.studies.schemas import StudyProgress

router = APIRouter(prefix=API_PREFIX, tags=["studies"], responses=ERRORS)

POLL_S = 0.5


def _progress(factory: sessionmaker[Session], team_id: int, study_id: int) -> StudyProgress | None:
    with unit_of_work(factory) as session:
        found = studies.study_progress(session, team_id, study_id)
        if found is None:
            return None
        study, counts, best = found
        return StudyProgress.of(study, counts, best, finished=study.state.is_finished())


@router.get(
    "/studies/{study_id}/events",
    response_class=EventSourceResponse,
    summary="Server-sent events as the study's trials change",
    description="Event `progress` (data: the study's state, trial counts and best value) on "
    "connect and whenever it changes; `end` when the study is finished (or with `once=true` "
    "after the first event); the stream closes after `max_s` seconds at the latest.",
)
async def study_events(
    request: Request,
    study: DetachedStudyDep,
    once: bool = False,
    max_s: Annotated[float, Query(gt=0, le=3600, description="Close after this long.")] = 600,
) -> AsyncIterator[ServerSentEvent]:
    factory = request.app.state.read_session_factory
    team_id, study_id = study.team_id, study.id
    assert team_id is not None
    deadline = time.monotonic() + max_s
    last: StudyProgress | None = None
    sequence = 0
    while True:
        try:
            progress = await run_in_threadpool(_progress, factory, team_id, study_id)
        except TuneboardError as err:
            yield ServerSentEvent(event="error", data={"code": err.code, "message": err.message})
            return
        if progress is None:
            yield ServerSentEvent(event="end", data={"study_id": study_id, "reason": "deleted"})
            return
        if progress != last:
            sequence += 1
            yield ServerSentEvent(event="progress", id=str(sequence), data=progress)
            last = progress
        if progress.finished or once:
            yield ServerSentEvent(
                event="end", data={"study_id": study_id, "state": progress.state}
            )
            return
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(POLL_S)
