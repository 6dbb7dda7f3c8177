"""The team-wide leaderboard: the best trial of each of the team's studies."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import API_PREFIX, SessionDep, Viewer
from api.openapi import ERRORS
from api.pagination import Limit, cursor_query, decode_cursor, page
from tuneboard import leaderboard
from tuneboard.schemas import Page
from tuneboard.spec.refs import REF_PATTERN
from tuneboard.standards import service as standards
from tuneboard.studies.schemas import TeamLeaderboardEntry

router = APIRouter(prefix=API_PREFIX, tags=["leaderboard"], responses=ERRORS)


@router.get(
    "/leaderboard",
    summary="Best trial per study across the team",
    description="One entry per study that has a complete trial: its best by the first "
    "objective. Entries are grouped by metric (alphabetically) and ranked within a metric in "
    "its direction. Filter by `standard` (\"name\" or \"name@N\"), `dataset`, `metric`; "
    "`accepted_only` keeps each study's best accepted trial.",
)
def team_leaderboard(
    session: SessionDep,
    principal: Viewer,
    limit: Limit,
    cursor: Annotated[str | None, cursor_query(int, str, float, int)] = None,
    standard: Annotated[str | None, Query(max_length=250, pattern=REF_PATTERN)] = None,
    dataset: Annotated[str | None, Query(max_length=1000)] = None,
    metric: Annotated[str | None, Query(max_length=200)] = None,
    accepted_only: bool = False,
) -> Page[TeamLeaderboardEntry]:
    after = None
    if cursor:
        rank, metric_name, score, study_id = decode_cursor(cursor, int, str, float, int)
        after = leaderboard.TeamPosition(rank, metric_name, score, study_id)
    rows = leaderboard.team_leaderboard(
        session,
        principal.team_id,
        limit=limit + 1,
        after=after,
        standard=standards.parse_ref(standard) if standard is not None else None,
        dataset=dataset,
        metric=metric,
        accepted_only=accepted_only,
    )
    items, next_cursor = page(rows, limit, lambda r: (r.rank, r.metric, r.score, r.study.id))
    return Page[TeamLeaderboardEntry](
        items=[TeamLeaderboardEntry.of(r) for r in items],
        next_cursor=next_cursor,
    )
