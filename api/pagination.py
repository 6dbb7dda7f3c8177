"""Cursor pagination: ``?limit=&cursor=`` in, ``{"items", "next_cursor"}`` out.

Every list route pages this way, with these helpers: the route decodes the cursor into the sort
key its repository query starts after (``CursorKey`` does it for a key of one integer), asks for
``limit + 1`` rows and hands them to ``page``.
A cursor is the last row's sort key, its values joined by ``~`` (``42``; ``3~0.97~17`` for a
study's leaderboard). Clients pass ``next_cursor`` back unchanged; each list documents the exact
pattern of its cursor in OpenAPI, and every string of that pattern is a position the list can
start after (a key that no row has simply starts where it would sort). Anything else is a 422,
never a 500; an empty cursor asks for the first page. ``limit`` above the server's maximum
(``TUNEBOARD_MAX_PAGE_SIZE``, 500) is clamped to it.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query, Request

from tuneboard.errors import InvalidInput

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50


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

# One pattern per kind of key value: what ``encode_cursor`` writes and ``decode_cursor`` reads.
# Ints stay within 64 bits; floats are Python's repr, finite, with bounded digits.
_INT = r"-?[0-9]{1,18}"
_FLOAT = r"-?[0-9]{1,17}(?:\.[0-9]{1,17})?(?:e[+-]?[0-9]{1,3})?"
_STR = r"[^\x00]{1,200}"
_PATTERNS: dict[type, str] = {int: _INT, float: _FLOAT, str: _STR}
SEPARATOR = "~"
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


def cursor_pattern(*kinds: type) -> str:
    """The pattern of a cursor for a sort key of ``kinds`` (empty: the first page)."""
    return "^(?:" + SEPARATOR.join(f"(?:{_PATTERNS[k]})" for k in kinds) + ")?$"


def cursor_query(*kinds: type) -> Any:
    """The ``cursor`` query parameter of a list sorted by a key of ``kinds``:
    ``cursor: Annotated[str | None, cursor_query(int, float, int)] = None``."""
    return Query(
        pattern=cursor_pattern(*kinds),
        description="next_cursor of the previous page; omit for the first. It is the last "
        "row's sort key, its values joined by `~`.",
    )


CURSOR_PATTERN = cursor_pattern(int)
"""The cursor of every list sorted by one integer (an id, a number, a version)."""

Cursor = Annotated[str | None, cursor_query(int)]


def encode_cursor(*key: Any) -> str:
    return SEPARATOR.join(repr(float(v)) if isinstance(v, float) else str(v) for v in key)


def _bad(reason: str) -> InvalidInput:
    return InvalidInput(f"cursor: {reason}", [{"field": "cursor", "in": "query", "reason": reason}])


def _split(cursor: str, kinds: tuple[type, ...]) -> list[str]:
    """The cursor's values; a string value may itself hold the separator."""
    parts = cursor.split(SEPARATOR)
    if str in kinds and len(parts) >= len(kinds):
        i = kinds.index(str)
        tail = len(parts) - (len(kinds) - i - 1)
        parts = [*parts[:i], SEPARATOR.join(parts[i:tail]), *parts[tail:]]
    return parts


def _value(text: str, kind: type) -> Any:
    if not re.fullmatch(_PATTERNS[kind], text):
        raise _bad("not a cursor for this list")
    if kind is float:  # a finite bound past the largest float sorts like it
        value = float(text)
        return math.copysign(sys.float_info.max, value) if math.isinf(value) else value
    if kind is int:  # every integer key is a 32-bit column; a bound past it sorts like its end
        return max(_INT_MIN, min(int(text), _INT_MAX))
    return text


def decode_cursor(cursor: str, *kinds: type) -> tuple[Any, ...]:
    """The key ``encode_cursor`` made, checked against ``kinds``; 422 for anything else."""
    parts = _split(cursor, kinds)
    if len(parts) != len(kinds):
        raise _bad("not a cursor for this list")
    return tuple(_value(text, kind) for text, kind in zip(parts, kinds, strict=True))


def cursor_key(cursor: Cursor = None) -> int | None:
    (key,) = decode_cursor(cursor, int) if cursor else (None,)
    return key


CursorKey = Annotated[int | None, Depends(cursor_key)]
"""The ``cursor`` of a list sorted by one integer, decoded: the key the page starts after
(before, for a list newest first); None for the first page."""


def page(
    rows: Sequence[T], limit: int, key: Callable[[T], Sequence[Any]]
) -> tuple[list[T], str | None]:
    """The first ``limit`` rows (callers fetch ``limit + 1``) and the cursor after them."""
    items = list(rows[:limit])
    more = len(rows) > limit
    return items, (encode_cursor(*key(items[-1])) if more and items else None)
