"""Trial parameters as stored (Optuna's internal floats + distribution JSON) and as people read
them (external values: the categorical choice, the int)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from optuna.distributions import BaseDistribution, json_to_distribution


@lru_cache(maxsize=4096)
def distribution_from_json(text: str) -> BaseDistribution:
    return json_to_distribution(text)


def external_params(params: dict[str, Any], distributions: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, internal in params.items():
        dist_json = distributions.get(name)
        if dist_json is None:
            out[name] = internal
            continue
        out[name] = distribution_from_json(dist_json).to_external_repr(float(internal))
    return out
