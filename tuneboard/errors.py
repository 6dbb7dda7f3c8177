"""One exception tree. Each error knows its HTTP status and code; the API turns any of them
into ``{"error": {"code", "message", "details"}}`` in a single handler."""

from __future__ import annotations

from typing import Any


class TuneboardError(Exception):
    status_code: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(TuneboardError):
    status_code = 422
    code = "invalid"


class NotFound(TuneboardError):
    status_code = 404
    code = "not_found"


class Conflict(TuneboardError):
    status_code = 409
    code = "conflict"


class Unauthorized(TuneboardError):
    status_code = 401
    code = "unauthorized"


class Forbidden(TuneboardError):
    status_code = 403
    code = "forbidden"


class StandardViolation(InvalidInput):
    code = "standard_violation"


class Unavailable(TuneboardError):
    status_code = 503
    code = "unavailable"
