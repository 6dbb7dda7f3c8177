"""One exception tree. Each error knows its HTTP status and code; the API turns any of them
into ``{"error": {"code", "message", "details"}}`` in a single handler."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


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

    @classmethod
    def at(cls, field: str, reason: str) -> InvalidInput:
        """One bad field: the message and ``details`` name it, in the API's one details shape."""
        return cls(f"{field}: {reason}", [{"field": field, "reason": reason}])

    @classmethod
    def from_validation_error(
        cls, exc: ValidationError, prefix: tuple[str | int, ...] = ()
    ) -> InvalidInput:
        """One 422 naming every bad field (dotted path) and why, from pydantic's errors."""
        details = [
            {
                "field": ".".join(str(p) for p in (*prefix, *err["loc"])) or "body",
                "reason": err["msg"].removeprefix("Value error, "),
            }
            for err in exc.errors(include_url=False, include_input=False)
        ]
        first = details[0] if details else {"field": "body", "reason": "invalid"}
        more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
        return cls(f"{first['field']}: {first['reason']}{more}", details)


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


class TooManyRequests(TuneboardError):
    """A rate limit or a team's cap: the caller may try again after ``retry_after`` seconds."""

    status_code = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int, details: Any = None) -> None:
        super().__init__(message, details)
        self.retry_after = max(1, retry_after)
