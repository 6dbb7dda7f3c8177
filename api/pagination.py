"""Cursor pagination: ``?limit=&cursor=`` in, ``{"items", "next_cursor"}`` out.

A cursor is opaque to clients: the URL-safe base64 of the last row's sort key. A cursor that
does not decode to the expected key is a 422, never a 500. ``limit`` above the server's maximum
(``TUNEBOARD_MAX_PAGE_SIZE``, 500) is clamped to it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request

from tuneboard.errors import InvalidInput

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
_MAX_INT = 2**63 - 1


def page_limit(
    request: Request,
    limit: Annotated[
        int,
        Query(ge=1, description="Items per page; values above the server maximum (500 by "
              "default) are clamped to it."),
    ] = DEFAULT_PAGE_SIZE,
) -> int:
    return min(limit, int(request.app.state.settings.max_page_size))


Limit = Annotated[int, Depends(page_limit)]
Cursor = Annotated[
    str | None,
    Query(max_length=512, description="next_cursor of the previous page; omit for the first."),
]


def encode_cursor(*key: Any) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _bad(reason: str) -> InvalidInput:
    return InvalidInput(f"cursor: {reason}", [{"field": "cursor", "in": "query", "reason": reason}])


def _fits(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return kind is bool
    if kind is int:
        return isinstance(value, int) and -_MAX_INT <= value <= _MAX_INT
    if kind is float:
        return isinstance(value, int | float) and not math.isnan(value) and (
            not isinstance(value, int) or -_MAX_INT <= value <= _MAX_INT
        )
    return isinstance(value, kind)


def decode_cursor(cursor: str, *kinds: type) -> tuple[Any, ...]:
    """The key ``encode_cursor`` made, checked against ``kinds``; 422 for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        raise _bad("not a cursor this server issued") from None
    if not isinstance(key, list) or len(key) != len(kinds):
        raise _bad("not a cursor for this list")
    if not all(_fits(v, k) for v, k in zip(key, kinds, strict=True)):
        raise _bad("not a cursor for this list")
    return tuple(float(v) if k is float else v for v, k in zip(key, kinds, strict=True))


def page(
    rows: Sequence[T], limit: int, key: Callable[[T], Sequence[Any]]
) -> tuple[list[T], str | None]:
    """The first ``limit`` rows (callers fetch ``limit + 1``) and the cursor after them."""
    items = list(rows[:limit])
    more = len(rows) > limit
    return items, (encode_cursor(*key(items[-1])) if more and items else None)
