"""Pieces every domain's output models share: the page of a list and JSON-safe field types.

Each domain keeps its pydantic models in its own ``schemas`` module (``studies.schemas``,
``standards.schemas``, ``teams.schemas``, ``audit.schemas``); this module imports nothing else
of tuneboard, so any of them can build on it.

JSON cannot carry NaN or infinities: every non-finite number (stored as "nan", "inf", "-inf"
inside JSON columns) is rendered as ``null``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "JsonObject",
    "JsonValue",
    "Number",
    "Page",
    "UtcDatetime",
    "View",
    "finite_or_none",
    "json_safe",
]

T = TypeVar("T")

NON_FINITE_STRINGS = frozenset({"nan", "inf", "-inf", "infinity", "-infinity"})


def finite_or_none(value: Any) -> float | None:
    """A JSON-safe number: non-finite floats, and the strings the store uses for them, are None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        if value.lower() in NON_FINITE_STRINGS:
            return None
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float):
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _as_utc(value: datetime) -> datetime:
    # The store keeps naive UTC on every backend; the API says which zone it is.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


Number = Annotated[float | None, BeforeValidator(finite_or_none)]
JsonValue = Annotated[Any, AfterValidator(json_safe)]
JsonObject = Annotated[dict[str, Any], AfterValidator(json_safe)]
UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


class View(BaseModel):
    """Base of the output models built from rows (by their ``of`` constructors)."""

    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    """Every list: a page of items and the cursor of the next page (None on the last page)."""

    items: list[T]
    next_cursor: str | None = Field(
        None, description="Pass as ?cursor= to get the next page; null on the last page."
    )
