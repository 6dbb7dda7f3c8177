"""The canonical hash: one digest for a spec or a request body, whatever its key order."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tuneboard.spec.study import StudySpec

__all__ = ["canonical_hash", "spec_hash"]


def canonical_hash(payload: Any) -> str:
    """sha256 of canonical JSON: equal documents hash equally whatever their key order."""
    canonical = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def spec_hash(spec: StudySpec) -> str:
    return canonical_hash(spec.model_dump(mode="json"))
