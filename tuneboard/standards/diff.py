"""What changed between two standard documents.

Rules are matched by ``param`` and compared field by field (a range that exists on both sides
is compared by ``range.low``, ``range.high``, ``range.log``). Defaults are compared leaf by leaf
under dotted paths. Criteria have no identity, so a changed threshold shows as one criterion
removed and one added.
"""

from __future__ import annotations

import json
from typing import Any

from tuneboard.standards.schemas import (
    AcceptanceDiff,
    FieldChange,
    PathChange,
    Rule,
    RuleChange,
    RulesDiff,
    StandardDiff,
    StandardDocument,
    same_value,
)

_MISSING = object()


def diff_documents(
    a: StandardDocument,
    b: StandardDocument,
    *,
    from_version: int | None = None,
    to_version: int | None = None,
) -> StandardDiff:
    return StandardDiff(
        name=b.name,
        from_version=from_version,
        to_version=to_version,
        description=(
            FieldChange(before=a.description, after=b.description)
            if a.description != b.description
            else None
        ),
        rules=_diff_rules(a.rules, b.rules),
        defaults=_diff_paths(
            a.defaults.model_dump(exclude_none=True), b.defaults.model_dump(exclude_none=True)
        ),
        acceptance=_diff_acceptance(a, b),
    )


def _diff_rules(before: list[Rule], after: list[Rule]) -> RulesDiff:
    old = {r.param: r for r in before}
    new = {r.param: r for r in after}
    changed = []
    for rule in after:
        if rule.param not in old:
            continue
        split = old[rule.param].range is not None and rule.range is not None
        fields_before = _rule_fields(old[rule.param], split)
        fields_after = _rule_fields(rule, split)
        changes = {
            name: FieldChange(before=fields_before.get(name), after=fields_after.get(name))
            for name in sorted(fields_before.keys() | fields_after.keys())
            if not _equal(fields_before.get(name), fields_after.get(name))
        }
        if changes:
            changed.append(RuleChange(param=rule.param, changes=changes))
    return RulesDiff(
        added=[r for r in after if r.param not in old],
        removed=[r for r in before if r.param not in new],
        changed=changed,
    )


def _rule_fields(rule: Rule, split_range: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "allowed": rule.allowed,
        "default": rule.default,
        "rationale": rule.rationale,
    }
    if split_range and rule.range is not None:
        fields.update({f"range.{k}": v for k, v in rule.range.model_dump().items()})
    else:
        fields["range"] = rule.range.model_dump() if rule.range is not None else None
    return fields


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return same_value(a, b)


def _leaves(value: Any, path: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _leaves(item, f"{path}.{key}" if path else str(key), out)
    else:
        out[path] = value
    return out


def _diff_paths(before: dict[str, Any], after: dict[str, Any]) -> list[PathChange]:
    old, new = _leaves(before, "", {}), _leaves(after, "", {})
    changes = []
    for path in sorted(old.keys() | new.keys()):
        a, b = old.get(path, _MISSING), new.get(path, _MISSING)
        if a is _MISSING:
            changes.append(PathChange(path=path, kind="added", after=b))
        elif b is _MISSING:
            changes.append(PathChange(path=path, kind="removed", before=a))
        elif not _equal(a, b):
            changes.append(PathChange(path=path, kind="changed", before=a, after=b))
    return changes


def _diff_acceptance(a: StandardDocument, b: StandardDocument) -> AcceptanceDiff:
    def key(criterion: Any) -> str:
        return json.dumps(criterion.model_dump(), sort_keys=True)

    old = {key(c) for c in a.acceptance}
    new = {key(c) for c in b.acceptance}
    return AcceptanceDiff(
        added=[c for c in b.acceptance if key(c) not in old],
        removed=[c for c in a.acceptance if key(c) not in new],
    )
