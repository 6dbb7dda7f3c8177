"""What the client raises: the API's own error, or a client that cannot be set up."""

from __future__ import annotations

from typing import Any, NamedTuple


class FieldProblem(NamedTuple):
    """One bad field of a request, as a 422 names it: a dotted path and why."""

    field: str
    reason: str


class ApiError(Exception):
    """An error response: the API's status, code, message and ``details``.

    Validation errors (422) carry ``details`` as a list of ``{"field", "reason"}`` objects;
    ``problems`` gives them typed, each distinct problem once.
    """

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    @property
    def problems(self) -> list[FieldProblem]:
        if not isinstance(self.details, list):
            return []
        found = [
            FieldProblem(str(item["field"]), str(item.get("reason", "invalid")))
            for item in self.details
            if isinstance(item, dict) and "field" in item
        ]
        return list(dict.fromkeys(found))


class ConfigError(Exception):
    """The client cannot be set up or cannot reach the API (no API key, unreachable server)."""
