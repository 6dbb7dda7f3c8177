"""Every router of the JSON API. Each declares its full path prefix (``API_PREFIX`` + its
resource), so route templates (OpenAPI, metrics labels) read as clients call them.

A new resource adds its module here and its router to ``API_ROUTERS``.
"""

from fastapi import APIRouter

from api.deps import API_PREFIX
from api.routes import audit, events, keys, leaderboard, me, standards, studies, trials

API_ROUTERS: list[APIRouter] = [
    studies.router,
    trials.router,
    events.router,
    leaderboard.router,
    keys.router,
    me.router,
    audit.router,
    standards.router,
]

__all__ = ["API_PREFIX", "API_ROUTERS"]
