"""ASGI middleware: the request body limit, valid Unicode in JSON bodies, and request metrics
(pure ASGI, so streaming responses such as server-sent events pass through untouched)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response, escaped
from api.observability import Metrics


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds {limit} bytes")


class BodySizeLimit:
    """413 for a body over ``max_bytes``: by its Content-Length before anything reads it, and
    by counting what arrives (a chunked body, or a Content-Length that lies)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                await error_response(400, "bad_request", "invalid Content-Length header")(
                    scope, receive, send
                )
                return
            if too_large:
                await self._reject(scope, receive, send)
                return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._reject(scope, receive, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "payload_too_large", f"the request body exceeds {self.max_bytes} bytes",
            {"max_bytes": self.max_bytes}, headers={"Connection": "close"},
        )
        await response(scope, receive, send)


# A JSON escape in the surrogate range (\uD800 to \uDFFF): only then can a body that is valid
# UTF-8 decode to a string that is not valid Unicode.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _invalid(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def unicode_problems(value: Any, path: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """Every string (key or value) in a parsed JSON document that is not valid Unicode: a lone
    surrogate such as ``"\\ud800"`` decodes in Python but cannot be encoded, hashed or echoed."""
    problems: list[dict[str, str]] = []
    field = ".".join(path) or "body"
    if isinstance(value, str):
        if _invalid(value):
            problems.append({"field": field, "in": "body", "reason": (
                f"not valid Unicode: {escaped(value)[:80]!r} holds a lone surrogate")})
    elif isinstance(value, dict):
        for key, item in value.items():
            if _invalid(key):
                problems.append({"field": ".".join((*path, escaped(key))), "in": "body",
                                 "reason": "this name is not valid Unicode: a lone surrogate"})
            else:
                problems.extend(unicode_problems(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problems.extend(unicode_problems(item, (*path, str(index))))
    return problems


def body_unicode_problems(body: bytes) -> list[dict[str, str]]:
    """Where a JSON body is not valid Unicode; empty when it is (or when it is not JSON at all,
    which the route's parser reports)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as err:
        return [{"field": "body", "in": "body",
                 "reason": f"not valid UTF-8 (at byte {err.start})"}]
    if not _SURROGATE_ESCAPE.search(body):
        return []
    try:
        document = json.loads(body)
    except ValueError:
        return []
    return unicode_problems(document)


class ValidUnicode:
    """422 naming the field for a JSON body holding text that is not valid Unicode, before any
    route parses it: such a string would break hashing, storing and echoing it further in."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        # FastAPI reads a body sent without a Content-Type as JSON too.
        content_type = Headers(scope=scope).get("content-type", "json")
        if "json" not in content_type.lower():
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        problems = body_unicode_problems(body)
        if problems:
            first = problems[0]
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            response = error_response(
                422, "invalid", f"{first['field']}: {first['reason']}{more}", problems
            )
            await response(scope, receive, send)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


class RequestMetrics:
    """Counts requests and times them per route template (``/api/v1/studies/{study_id}``)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def tracking_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or getattr(route, "path", None)
            self.metrics.observe(
                scope.get("method", "GET"),
                template or "<unmatched>",
                status,
                time.perf_counter() - start,
            )
