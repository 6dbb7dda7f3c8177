"""What a study may spend (budget) and where its trials run (resources)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from tuneboard.spec._problems import _error, _Spec
from tuneboard.spec.scalars import JsonFloat, JsonInt

__all__ = ["BudgetSpec", "ResourcesSpec"]

_QUEUE_RE = re.compile(r"^[a-z0-9_-]+$")
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:[0-9]+)$")


class BudgetSpec(_Spec):
    """How much a study may spend; enforced in the database."""

    n_trials: JsonInt = Field(ge=1, le=100_000)
    max_parallel: JsonInt = Field(1, ge=1, le=1000)
    timeout_s: JsonFloat | None = Field(None, gt=0)
    max_failed: JsonInt = Field(10, ge=0)
    max_retries: JsonInt = Field(2, ge=0, le=10)


class ResourcesSpec(_Spec):
    """Where trials run: a worker queue, and a device (``auto``: cuda when the worker has one)."""

    queue: str = Field("default", min_length=1, max_length=64)
    device: str = "auto"

    @field_validator("queue")
    @classmethod
    def _queue(cls, value: str) -> str:
        if not _QUEUE_RE.match(value):
            raise _error(
                "invalid_name",
                f"{value!r} is not a queue name; use lower-case letters, digits, '_' and '-'.",
            )
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not _DEVICE_RE.match(value):
            raise _error(
                "invalid_name",
                f"{value!r} is not a device; use auto, cpu, cuda or cuda:N (e.g. cuda:0).",
            )
        return value
