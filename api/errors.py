"""The one error shape, ``{"error": {"code", "message", "details"}}``, made in one place.

``install`` registers a handler for each kind of failure: our own errors (they carry their
status), request validation (422 naming each field), Starlette's HTTP errors (404, 405, 413...),
database errors that escaped the session dependency, and a last resort for bugs (500).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from tuneboard.db import describe_db_error
from tuneboard.errors import (
    Conflict,
    InvalidInput,
    TooManyRequests,
    TuneboardError,
    Unavailable,
)

log = logging.getLogger(__name__)

HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    500: "internal",
    503: "unavailable",
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "examples": ["not_found"]},
                "message": {"type": "string", "examples": ["study 12 not found"]},
                "details": {},
            },
        }
    },
}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": jsonable_encoder(details)}}
    try:
        return JSONResponse(body, status_code=status, headers=headers)
    except UnicodeEncodeError:  # the input echoed back holds a lone surrogate: show its escape
        return JSONResponse(escaped(body), status_code=status, headers=headers)


def escaped(value: Any) -> Any:
    """``value`` with every string (keys too) made encodable: lone surrogates as escapes."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {escaped(k): escaped(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [escaped(v) for v in value]
    return value


def translate_db_error(exc: SQLAlchemyError) -> TuneboardError:
    """A database failure as one of our errors: the caller's fault (4xx) or unavailability."""
    if isinstance(exc, IntegrityError):
        return Conflict("the request conflicts with a concurrent change; retry it")
    if isinstance(exc, DataError):
        return InvalidInput.at(
            "request",
            "a value cannot be stored or compared (out of range, or a NUL character in text)",
        )
    if isinstance(exc, DBAPIError | PoolTimeoutError):
        return Unavailable("the database is unavailable; retry later")
    return Unavailable("the database could not complete the request; retry later")


def _field(loc: tuple[Any, ...]) -> tuple[str, str]:
    where = str(loc[0]) if loc else "body"
    rest = loc[1:] if where in ("body", "query", "path", "header", "cookie") else loc
    return ".".join(str(p) for p in rest) or where, where


async def _tuneboard_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TuneboardError)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    if isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after)}
    return error_response(exc.status_code, exc.code, exc.message, exc.details, headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if any(err.get("loc", ())[:1] == ("path",) for err in exc.errors()):
        # A word where a route wants a number may be another route's literal: GET /trials/ask.
        methods = allowed_methods(request)
        if methods and request.method not in methods:
            return _method_not_allowed(methods)
    details = []
    for err in exc.errors():
        field, where = _field(tuple(err.get("loc", ())))
        reason = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        details.append({"field": field, "in": where, "reason": reason})
    first = details[0] if details else {"field": "body", "reason": "invalid"}
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return error_response(422, "invalid", f"{first['field']}: {first['reason']}{more}", details)


def _is_param(segment: str) -> bool:
    return segment.startswith("{")


def allowed_methods(request: Request) -> set[str]:
    """Every method of every route that serves the request's path (Starlette's own 405 names
    only the first such route's). A literal segment wins over a parameter in its place:
    ``/trials/ask`` is the ask route, not trial number "ask"."""
    serving: list[tuple[list[str], set[str]]] = []
    for route in iter_route_contexts(request.app.router.routes):
        if route.methods and route.path and route.matches(request.scope)[0] is not Match.NONE:
            serving.append((route.path.strip("/").split("/"), set(route.methods)))
    literal = {i for segments, _ in serving for i, s in enumerate(segments) if not _is_param(s)}
    methods: set[str] = set()
    for segments, route_methods in serving:
        if not any(_is_param(s) and i in literal for i, s in enumerate(segments)):
            methods |= route_methods
    return methods


def _method_not_allowed(methods: set[str]) -> JSONResponse:
    return error_response(
        405, "method_not_allowed", "Method Not Allowed", None, {"Allow": ", ".join(sorted(methods))}
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        return _method_not_allowed(allowed_methods(request))
    status = exc.status_code
    code = HTTP_CODES.get(status, "error")
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    message = exc.detail if isinstance(exc.detail, str) and exc.detail else phrase
    if status == 404 and message == "Not Found":
        message = "no such resource"
    return error_response(status, code, message, None, dict(exc.headers or {}) or None)


async def _database_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SQLAlchemyError)
    log.warning("database error: %s", describe_db_error(exc))
    return await _tuneboard_error(_request, translate_db_error(exc))


async def _unhandled(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal", "internal error; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(TuneboardError, _tuneboard_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(SQLAlchemyError, _database_error)
    app.add_exception_handler(Exception, _unhandled)
