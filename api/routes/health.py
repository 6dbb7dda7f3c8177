"""Operations: liveness, readiness, Prometheus metrics. No authentication."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import SettingsDep
from api.errors import error_response
from api.observability import readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: database (migrated) and broker reachable",
    responses={503: {"description": "Not ready: which check failed and why"}},
)
def readyz(settings: SettingsDep) -> JSONResponse:
    failures = readiness(settings)
    if failures:
        return error_response(503, "unavailable", "not ready", failures)
    return JSONResponse({"status": "ready"})


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
