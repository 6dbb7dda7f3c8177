"""Web pages at /ui: server-rendered shells whose scripts read the JSON API with the API key the
user pastes once (kept in the browser's localStorage). No external assets: the charts are
plotly.js from the installed ``plotly`` package, served here under a versioned URL.
"""

from __future__ import annotations

import functools
import gzip
from importlib import metadata, resources
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from api.deps import API_PREFIX, StudyId, TrialNumber

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/ui", include_in_schema=False)

StandardName = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9_.-]{1,200}$")]

PLOTLY_JS = resources.files("plotly") / "package_data" / "plotly.min.js"
PLOTLY_URL = f"/ui/vendor/plotly-{metadata.version('plotly')}.min.js"
# The URL names the version, so a browser may keep the file for good.
IMMUTABLE = "public, max-age=31536000, immutable"


def static_files() -> StaticFiles:
    return StaticFiles(directory=HERE / "static")


def _page(request: Request, template: str, **context: object) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        template,
        {
            "api": API_PREFIX,
            "page": template.removesuffix(".html"),
            "plotly_url": PLOTLY_URL,
            **context,
        },
    )


@functools.cache
def _plotly_bytes(compressed: bool) -> bytes:
    data = PLOTLY_JS.read_bytes()
    return gzip.compress(data, compresslevel=6, mtime=0) if compressed else data


@router.get(PLOTLY_URL.removeprefix("/ui"))
def plotly_js(accept_encoding: Annotated[str, Header()] = "") -> Response:
    """plotly.js from the ``plotly`` package, gzipped for browsers that take it."""
    compressed = "gzip" in accept_encoding.lower()
    headers = {"Cache-Control": IMMUTABLE, "Vary": "Accept-Encoding"}
    if compressed:
        headers["Content-Encoding"] = "gzip"
    return Response(_plotly_bytes(compressed), media_type="text/javascript", headers=headers)


@router.get("", response_class=RedirectResponse)
def home() -> RedirectResponse:
    return RedirectResponse("/ui/studies")


@router.get("/studies", response_class=HTMLResponse)
def studies_page(request: Request) -> HTMLResponse:
    return _page(request, "studies.html")


@router.get("/studies/{study_id}", response_class=HTMLResponse)
def study_page(request: Request, study_id: StudyId) -> HTMLResponse:
    return _page(request, "study.html", study_id=study_id)


@router.get("/studies/{study_id}/trials/{number}", response_class=HTMLResponse)
def trial_page(
    request: Request,
    study_id: StudyId,
    number: TrialNumber,
) -> HTMLResponse:
    return _page(request, "trial.html", study_id=study_id, number=number)


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    studies: Annotated[
        str, Query(max_length=200, pattern=r"^[0-9, ]*$", description="Study ids: 1,2,3")
    ] = "",
) -> HTMLResponse:
    ids = [int(part) for part in studies.replace(" ", "").split(",") if part]
    return _page(request, "compare.html", study_ids=",".join(str(i) for i in ids[:10]))


@router.get("/leaderboard", response_class=HTMLResponse)
def leaderboard_page(request: Request) -> HTMLResponse:
    return _page(request, "leaderboard.html")


@router.get("/standards", response_class=HTMLResponse)
def standards_page(request: Request) -> HTMLResponse:
    return _page(request, "standards.html")


@router.get("/standards/{name}", response_class=HTMLResponse)
def standard_page(request: Request, name: StandardName) -> HTMLResponse:
    return _page(request, "standard.html", name=name)
