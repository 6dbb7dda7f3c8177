"""Web pages at /ui: server-rendered shells whose scripts read the JSON API with the API key the
user pastes once (kept in the browser's localStorage). No external assets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from api.deps import API_PREFIX, MAX_ID

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/ui", include_in_schema=False)

StandardName = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_.-]{1,200}$")]


def static_files() -> StaticFiles:
    return StaticFiles(directory=HERE / "static")


def _page(request: Request, template: str, **context: object) -> HTMLResponse:
    return templates.TemplateResponse(
        request, template, {"api": API_PREFIX, "page": template.removesuffix(".html"), **context}
    )


@router.get("", response_class=RedirectResponse)
def home() -> RedirectResponse:
    return RedirectResponse("/ui/studies")


@router.get("/studies", response_class=HTMLResponse)
def studies_page(request: Request) -> HTMLResponse:
    return _page(request, "studies.html")


@router.get("/studies/{study_id}", response_class=HTMLResponse)
def study_page(
    request: Request, study_id: Annotated[int, PathParam(ge=1, le=MAX_ID)]
) -> HTMLResponse:
    return _page(request, "study.html", study_id=study_id)


@router.get("/leaderboard", response_class=HTMLResponse)
def leaderboard_page(request: Request) -> HTMLResponse:
    return _page(request, "leaderboard.html")


@router.get("/standards", response_class=HTMLResponse)
def standards_page(request: Request) -> HTMLResponse:
    return _page(request, "standards.html")


@router.get("/standards/{name}", response_class=HTMLResponse)
def standard_page(request: Request, name: StandardName) -> HTMLResponse:
    return _page(request, "standard.html", name=name)
