"""JSON's scalar types read as JSON means them, for every field a client sends.

pydantic's lax mode reads ``false`` as 0, ``1`` as true and ``"2"`` as 2. The OpenAPI document
says number, integer or boolean, and a client that sends something else has made a mistake, so
these types refuse it (a 422 naming the field) instead of guessing: a boolean is not a number, a
number is not a boolean, a string is neither. What JSON itself allows stays: an integer where a
number is asked for, and an integer written with a zero fraction (``3.0``, an integer to JSON
Schema too).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Strict
from pydantic_core import PydanticKnownError

__all__ = ["JsonBool", "JsonFloat", "JsonInt"]


def _not_bool_or_text(value: Any) -> Any:
    if isinstance(value, bool | str):
        raise PydanticKnownError("int_type")
    return value


JsonInt = Annotated[int, BeforeValidator(_not_bool_or_text)]
JsonFloat = Annotated[float, Strict()]
JsonBool = Annotated[bool, Strict()]
