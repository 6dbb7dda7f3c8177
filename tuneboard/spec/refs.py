"""How a study names a standard: ``name`` (its latest active version) or ``name@N`` (version N).

Standard names are 1 to 200 of ``A-Z a-z 0-9 _ . -``; versions count from 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["REF_PATTERN", "StandardRef"]

REF_PATTERN = r"^(?P<name>[A-Za-z0-9_.-]{1,200})(?:@(?P<version>[1-9][0-9]{0,8}))?$"
_REF_RE = re.compile(REF_PATTERN)


@dataclass(frozen=True)
class StandardRef:
    name: str
    version: int | None = None

    @classmethod
    def parse(cls, text: str) -> StandardRef:
        """``"name"`` -> (name, None); ``"name@3"`` -> (name, 3). Raises ValueError otherwise."""
        match = _REF_RE.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"{text!r} is not a standard reference; use name or name@N")
        version = match["version"]
        return cls(match["name"], int(version) if version is not None else None)

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"
