"""The FastAPI app: ``create_app(settings)``; uvicorn serves ``api.main:app``.

Creating the app touches no database, so it imports before ``tuneboard db upgrade`` has run
(``/readyz`` says what is missing until then).
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from api import errors, openapi
from api.middleware import BodySizeLimit, RequestMetrics, ValidUnicode
from api.observability import Metrics
from api.ratelimit import RateLimiter, limit_address
from api.routes import API_ROUTERS, health
from api.ui import router as ui_router
from api.ui import static_files
from tuneboard.config import Settings, get_settings
from tuneboard.db import get_session_factory, set_application_name
from tuneboard.queue import configure_client

DESCRIPTION = """Hyperparameter search for teams: submit studies, follow their trials, compare
results on leaderboards, and judge them against the team's standards.

Authenticate with `Authorization: Bearer <api key>`. Errors are always
`{"error": {"code", "message", "details"}}`. Lists are `{"items", "next_cursor"}`: pass
`next_cursor` back as `?cursor=` for the next page; `limit` is capped at 500.
"""

TAGS = [
    {"name": "studies", "description": "Create, follow and cancel studies."},
    {"name": "trials", "description": "A study's trials and their per-epoch metrics."},
    {"name": "leaderboard", "description": "Best results across the team's studies."},
    {"name": "standards", "description": "The team's versioned decision criteria."},
    {"name": "keys", "description": "API keys (admin)."},
    {"name": "audit", "description": "Who changed what (admin)."},
    {"name": "operations", "description": "Health, readiness and metrics."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    set_application_name("tuneboard-api")
    app = FastAPI(
        title="Tuneboard",
        version="0.1.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        docs_url="/docs",
        redoc_url=None,
        dependencies=[Depends(limit_address)],
    )
    app.state.settings = settings
    app.state.session_factory = get_session_factory(settings.database_url)
    app.state.read_session_factory = get_session_factory(settings.database_url, read_only=True)
    app.state.auth_session_factory = get_session_factory(settings.database_url, autocommit=True)
    app.state.metrics = Metrics(settings)
    app.state.rate_limiter = RateLimiter(settings)
    configure_client(settings)

    errors.install(app)
    app.include_router(health.router)
    for router in API_ROUTERS:
        app.include_router(router)
    app.include_router(ui_router)
    app.mount("/ui/static", static_files(), name="ui-static")
    app.add_middleware(ValidUnicode)  # inside the size limit: it reads bodies under the limit
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
    openapi.install(app)
    return app


app = create_app()
