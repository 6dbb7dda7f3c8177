"""Every router of the JSON API. Each declares its full path prefix (``API_PREFIX`` + its
resource), so route templates (OpenAPI, metrics labels) read as clients call them.

A new resource adds its module here and its router to ``API_ROUTERS``.
"""

from fastapi import APIRouter

from api.deps import API_PREFIX
from api.routes import (
    audit,
    ensemble,
    events,
    export,
    external,
    keys,
    leaderboard,
    lineage,
    me,
    notes,
    optuna,
    standards,
    studies,
    trials,
    ui_data,
    webhooks,
)

API_ROUTERS: list[APIRouter] = [
    studies.router,
    lineage.router,
    export.router,  # before trials: /trials/export is not a trial number
    trials.router,
    external.router,
    notes.router,
    ensemble.router,
    ui_data.router,
    events.router,
    leaderboard.router,
    keys.router,
    me.router,
    audit.router,
    standards.router,
    optuna.router,
    webhooks.router,
]

__all__ = ["API_PREFIX", "API_ROUTERS"]
