"""Where a study's first trials come from (``warm_start``).

A study under a standard begins with the configurations its standard's promotions recorded
(``promoted``, on unless turned off), then, for each study named in ``from_studies``, that
study's ``top_k`` best accepted trials. The dispatcher creates them as the first trials of the
budget (``tuneboard.studies.warm_start``); this module only says what a valid request is.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, field_validator

from tuneboard.spec._problems import _error, _Spec
from tuneboard.spec.scalars import JsonBool, JsonInt

__all__ = ["WarmStartSpec"]


class WarmStartSpec(_Spec):
    """The first trials: the standard's promoted configurations and earlier studies' best."""

    from_studies: list[Annotated[JsonInt, Field(ge=1)]] = Field(
        default_factory=list,
        max_length=20,
        description="Ids of earlier studies of the team under the same standard.",
    )
    top_k: JsonInt = Field(
        1, ge=1, le=100, description="Best accepted trials taken from each study."
    )
    promoted: JsonBool = Field(
        True, description="Begin with the configurations the standard's promotions recorded."
    )

    @field_validator("from_studies")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        repeated = sorted({i for i in value if value.count(i) > 1})
        if repeated:
            raise _error(
                "invalid_spec", f"Name each study once; repeated: {', '.join(map(str, repeated))}."
            )
        return value
