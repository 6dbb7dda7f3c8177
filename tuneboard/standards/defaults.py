"""Merging a standard's defaults into a raw study spec where the spec is silent.

Decisions:
- "Silent" means the key is absent or null. Pass the spec as the caller wrote it (the request
  body, or ``model_dump(exclude_unset=True)``): a dump that fills every schema default leaves
  nothing silent.
- Dict sections merge key by key, recursively; a value the spec states is never replaced.
  Where both sides carry a ``type`` and the types differ (a ``random`` sampler in the spec, a
  ``tpe`` sampler with options in the standard), the spec's dict is kept whole: options of one
  kind are meaningless for another.
- An external study (``objective: {external: true}``) gets no worker-only section
  (early stopping, callbacks, resources): its trials run the client's own code.
- A rule's ``default`` and ``defaults.fixed`` become ``fixed`` values only for params the spec
  neither searches nor fixes. The document guarantees the two never disagree.
- ``search.prefer_accepted``: ``search.constraints`` becomes the standard's metric acceptance
  criteria, replacing whatever the spec gave, so the stored spec is all a sampler needs.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from tuneboard.standards.schemas import MetricCriterion, StandardDocument

# Sections only our workers read: an external study (``objective.external``) takes none.
WORKER_SECTIONS = frozenset({"early_stopping", "callbacks", "resources"})


def apply_defaults(
    spec: Mapping[str, Any], doc: StandardDocument
) -> tuple[dict[str, Any], list[str]]:
    """The spec with the standard's defaults filled in, and the dotted paths that were filled.
    The input is not modified."""
    merged: dict[str, Any] = copy.deepcopy(dict(spec))
    applied: list[str] = []
    objective = merged.get("objective")
    external = isinstance(objective, Mapping) and objective.get("external") is True
    for section, default in doc.defaults.sections().items():
        if section == "fixed" or (external and section in WORKER_SECTIONS):
            continue
        stated = merged.get(section)
        if stated is None:
            merged[section] = copy.deepcopy(default)
            applied.append(section)
        elif isinstance(stated, dict) and _same_kind(stated, default):
            merged[section] = _merge(stated, default, section, applied)
    _apply_fixed(merged, _fixed_defaults(doc), applied)
    _apply_constraints(merged, doc, applied)
    return merged, applied


def _apply_constraints(merged: dict[str, Any], doc: StandardDocument, applied: list[str]) -> None:
    search = merged.get("search")
    if isinstance(search, dict) and search.get("prefer_accepted") is True:
        search["constraints"] = [
            {"metric": c.metric, "op": c.op, "value": c.value}
            for c in doc.acceptance
            if isinstance(c, MetricCriterion)
        ]
        applied.append("search.constraints")


def _fixed_defaults(doc: StandardDocument) -> dict[str, Any]:
    values = {rule.param: rule.default for rule in doc.rules if rule.default is not None}
    for param, value in (doc.defaults.fixed or {}).items():
        values.setdefault(param, value)
    return values


def _apply_fixed(merged: dict[str, Any], values: Mapping[str, Any], applied: list[str]) -> None:
    if not values:
        return
    search_space = merged.get("search_space")
    searched = search_space if isinstance(search_space, Mapping) else {}
    fixed = merged.get("fixed")
    if fixed is None:
        fixed = {}
    elif not isinstance(fixed, dict):
        return
    for param, value in values.items():
        if param in searched or fixed.get(param) is not None:
            continue
        fixed[param] = copy.deepcopy(value)
        applied.append(f"fixed.{param}")
    if fixed:
        merged["fixed"] = fixed


def _same_kind(stated: Mapping[str, Any], default: Mapping[str, Any]) -> bool:
    return not ("type" in stated and "type" in default and stated["type"] != default["type"])


def _merge(
    stated: dict[str, Any], default: Mapping[str, Any], path: str, applied: list[str]
) -> dict[str, Any]:
    for key, value in default.items():
        here = f"{path}.{key}"
        current = stated.get(key)
        if current is None:
            stated[key] = copy.deepcopy(value)
            applied.append(here)
        elif (
            isinstance(current, dict) and isinstance(value, Mapping) and _same_kind(current, value)
        ):
            stated[key] = _merge(current, value, here, applied)
    return stated
