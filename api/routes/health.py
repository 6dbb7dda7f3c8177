"""Operations: liveness, readiness, Prometheus metrics. No authentication.

``/readyz`` answers within ``READY_TIMEOUT_S`` whatever its dependencies do: each probe runs on
a small pool of its own (never the request threads a hung dependency may have used up, never
the event loop), and a probe that has not answered by then reports "down: timeout".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from api.errors import error_response
from api.observability import check_broker, check_database, check_schema

router = APIRouter(tags=["operations"])

READY_TIMEOUT_S = 2.5
OK = "ok"
_probes = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readyz")


async def _probe(check: Callable[[], str | None]) -> str:
    """``ok``, or ``down: <why>`` (``down: timeout`` when the check does not answer in time)."""
    future = asyncio.get_running_loop().run_in_executor(_probes, check)
    try:
        reason = await asyncio.wait_for(future, READY_TIMEOUT_S)
    except TimeoutError:
        return "down: timeout"
    return OK if reason is None else f"down: {reason}"


async def readiness_checks(database_url: str, broker_url: str) -> dict[str, str]:
    """Each dependency's state; the schema is checked only once the database answers."""
    database, broker = await asyncio.gather(
        _probe(lambda: check_database(database_url)), _probe(lambda: check_broker(broker_url))
    )
    schema = await _probe(lambda: check_schema(database_url)) if database == OK else (
        "unknown: the database is down"
    )
    return {"database": database, "schema": schema, "broker": broker}


@router.get("/healthz", summary="Liveness: the process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: database (migrated) and broker reachable",
    description="`checks` (when ready) or `error.details` (503) gives each dependency's state: "
    "`ok`, or `down: <why>`.",
    responses={503: {"description": "Not ready: each dependency's state"}},
)
async def readyz(request: Request) -> JSONResponse:
    # Settings from the app, not a dependency: a sync dependency would wait for a request thread.
    settings = request.app.state.settings
    checks = await readiness_checks(settings.database_url, settings.broker_url)
    down = [name for name, state in checks.items() if state != OK]
    if down:
        return error_response(503, "unavailable", f"not ready: {', '.join(down)}", checks)
    return JSONResponse({"status": "ready", "checks": checks})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
