"""Use cases on standards. Services flush and never commit; the request or task commits.

Role checks (maintainer to publish, deprecate and promote) belong to the API; these functions
only scope every read to the caller's team, so another team's standard is NotFound.

Decisions:
- ``"name"`` resolves to the latest active version; ``"name@N"`` to version N even when it is
  deprecated (a pinned study stays reproducible), and the check report says so in ``warnings``.
- A violating spec is admissible when it carries ``override: {reason}`` (non-blank); the report
  keeps ``ok: false`` and the violations, and ``override`` holds the reason to record.
- Promotion builds on the standard's newest version (not the study's pinned one), so it never
  quietly reverts later edits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tuneboard import audit, webhooks
from tuneboard.db.models import Standard, StandardVersion, Study, Trial
from tuneboard.errors import Conflict, InvalidInput, NotFound, StandardViolation
from tuneboard.optimization.params import external_params
from tuneboard.spec import StandardRef, TrialState
from tuneboard.standards import repository
from tuneboard.standards.defaults import apply_defaults
from tuneboard.standards.diff import diff_documents
from tuneboard.standards.rules import check_spec, scale_warnings
from tuneboard.standards.schemas import (
    CheckReport,
    StandardDiff,
    StandardDocument,
    document_of,
    version_ref,
)
from tuneboard.teams.service import Principal
from tuneboard.webhooks import WebhookEvent

PUBLISH_ROLE = "maintainer"
# How a promotion's version begins its changelog; warm starts find promoted versions by it.
PROMOTED_CHANGELOG = "promoted from study "


@dataclass(frozen=True)
class AppliedStandard:
    """A spec admitted under a standard: the version to pin, the spec with the standard's
    defaults merged in, and the check report (its ``override`` is what to record)."""

    version: StandardVersion
    spec: dict[str, Any]
    report: CheckReport


def create_standard(
    session: Session, principal: Principal, document: StandardDocument, changelog: str = ""
) -> StandardVersion:
    """A new standard at version 1. Conflict when the team already has one by that name."""
    exists = Conflict(f"standard {document.name!r} already exists; publish a new version")
    if repository.get_standard(session, principal.team_id, document.name) is not None:
        raise exists
    try:
        with session.begin_nested():
            standard = repository.add_standard(session, principal.team_id, document.name)
    except IntegrityError:
        raise exists from None
    version = _add_version(session, principal, standard, 1, document, changelog or "created")
    _audit(session, principal, "standard.create", version, {"changes": "created"})
    _emit_version(session, principal, WebhookEvent.STANDARD_PUBLISHED, version)
    return version


def publish_version(
    session: Session,
    principal: Principal,
    name: str,
    document: StandardDocument,
    changelog: str = "",
) -> StandardVersion:
    """The next version of an existing standard; earlier versions are left as they are."""
    version, changes = _publish(session, principal, name, document, changelog)
    _audit(session, principal, "standard.publish", version, {"changes": changes.summary()})
    return version


def deprecate_version(
    session: Session, principal: Principal, name: str, version: int
) -> StandardVersion:
    row = get_version(session, principal.team_id, name, version)
    if row.status != "deprecated":
        row.status = "deprecated"
        session.flush()
        _audit(session, principal, "standard.deprecate", row, {"status": "deprecated"})
        _emit_version(session, principal, WebhookEvent.STANDARD_DEPRECATED, row)
    return row


def get_standard(session: Session, team_id: int, name: str) -> StandardVersion:
    """The standard's newest version, whatever its status."""
    standard = _standard(session, team_id, name)
    latest = repository.latest_version(session, standard.id)
    if latest is None:
        raise NotFound(f"standard {name!r} not found")
    return latest


def list_standards(
    session: Session, team_id: int, *, limit: int, after_standard_id: int | None = None
) -> list[StandardVersion]:
    """The newest version of each standard, in creation order, after ``after_standard_id``."""
    return repository.list_latest_versions(
        session, team_id, limit=limit, after_standard_id=after_standard_id
    )


def list_versions(
    session: Session, team_id: int, name: str, *, limit: int, after_version: int | None = None
) -> list[StandardVersion]:
    """The standard's versions oldest first, after ``after_version``."""
    standard = _standard(session, team_id, name)
    return repository.list_versions(session, standard.id, limit=limit, after_version=after_version)


def get_version(session: Session, team_id: int, name: str, version: int) -> StandardVersion:
    standard = _standard(session, team_id, name)
    row = repository.get_version(session, standard.id, version)
    if row is None:
        raise NotFound(f"standard {name!r} has no version {version}")
    return row


def parse_ref(ref: str) -> StandardRef:
    """``ref`` as a :class:`StandardRef`; InvalidInput (422 at ``standard``) when it is not one."""
    try:
        return StandardRef.parse(ref.strip() if isinstance(ref, str) else ref)
    except ValueError:
        raise InvalidInput.at(
            "standard", f"reference {ref!r} must be 'name' or 'name@N'"
        ) from None


def resolve(session: Session, team_id: int, ref: str) -> StandardVersion:
    """``"name"``: the latest active version; ``"name@N"``: version N, deprecated or not."""
    parsed = parse_ref(ref)
    name = parsed.name
    if parsed.version is not None:
        return get_version(session, team_id, name, parsed.version)
    standard = _standard(session, team_id, name)
    latest = repository.latest_version(session, standard.id, active_only=True)
    if latest is None:
        raise NotFound(f"standard {name!r} has no active version; pin one as {name}@N")
    return latest


def check(session: Session, team_id: int, ref: str, spec: Mapping[str, Any]) -> CheckReport:
    """What submitting ``spec`` under the standard ``ref`` would meet; creates nothing."""
    return _check(resolve(session, team_id, ref), spec)[1]


def admit(session: Session, team_id: int, spec: Mapping[str, Any]) -> AppliedStandard | None:
    """For study submission: None when the spec names no standard; otherwise the pinned version
    and the spec with defaults merged. Raises StandardViolation (422, the report as details)
    when the spec breaks a rule without an override, and InvalidInput when the standard named
    does not exist for the team."""
    ref = spec.get("standard")
    if ref is None:
        return None
    try:
        version = resolve(session, team_id, ref)
    except NotFound as exc:
        raise InvalidInput.at("standard", exc.message) from None
    merged, report = _check(version, spec)
    if not report.admissible:
        reasons = "; ".join(v.reason for v in report.violations[:5])
        raise StandardViolation(
            f"spec breaks standard {report.standard}: {reasons}. "
            "Fix it or add override: {reason: ...}",
            report.model_dump(mode="json"),
        )
    return AppliedStandard(version=version, spec=merged, report=report)


def diff(session: Session, team_id: int, name: str, from_v: int, to_v: int) -> StandardDiff:
    a = get_version(session, team_id, name, from_v)
    b = get_version(session, team_id, name, to_v)
    return diff_documents(document_of(a), document_of(b), from_version=from_v, to_version=to_v)


def promote(
    session: Session, principal: Principal, study: Study, trial: Trial
) -> StandardVersion:
    """A new version of the study's standard whose rule defaults and ``defaults.fixed`` carry the
    trial's parameters (and the study's fixed values). Values a rule does not admit (a study run
    under an override) are left out and listed in the audit entry."""
    if study.team_id != principal.team_id:
        raise NotFound(f"study {study.id} not found")
    if trial.study_id != study.id:
        raise NotFound(f"trial {trial.number} not found in study {study.id}")
    if study.standard_version is None:
        raise Conflict(f"study {study.id} names no standard to promote into")
    if trial.state != TrialState.COMPLETE or trial.accepted is not True:
        raise Conflict(f"trial {trial.number} is not a complete, accepted trial")
    name = study.standard_version.standard.name
    head = repository.latest_version(session, study.standard_version.standard_id)
    assert head is not None
    base = document_of(head)
    spec = study.spec_model
    params = {
        **(spec.fixed if spec is not None else {}),
        **external_params(trial.params or {}, trial.distributions or {}),
    }
    document, skipped = _with_defaults(base, params)
    if document == base:
        raise Conflict(f"{version_ref(head)} already carries trial {trial.number}'s parameters")
    value = f" (value {trial.value:g})" if trial.value is not None else ""
    changelog = f"{PROMOTED_CHANGELOG}{study.id} trial {trial.number}{value}"
    version, changes = _publish(session, principal, name, document, changelog)
    _audit(
        session,
        principal,
        "standard.promote",
        version,
        {
            "changes": changes.summary(),
            "study_id": study.id,
            "trial_number": trial.number,
            "value": trial.value,
            "params": {k: v for k, v in params.items() if k not in skipped},
            "skipped": skipped,
        },
    )
    return version


def promote_best(session: Session, principal: Principal, study_id: int) -> StandardVersion:
    """``promote`` applied to the study's best complete, accepted trial."""
    study = repository.get_study(session, principal.team_id, study_id)
    if study is None:
        raise NotFound(f"study {study_id} not found")
    directions = list(study.directions or [])
    if len(directions) != 1:
        raise InvalidInput(
            f"study {study_id} has {len(directions)} objectives; promotion needs exactly one"
        )
    trial = repository.best_accepted_trial(session, study)
    if trial is None:
        raise Conflict(f"study {study_id} has no accepted trial to promote")
    return promote(session, principal, study, trial)


def _with_defaults(
    base: StandardDocument, params: Mapping[str, Any]
) -> tuple[StandardDocument, list[str]]:
    data = base.model_dump(mode="json")
    fixed = dict(data["defaults"].get("fixed") or {})
    skipped: list[str] = []
    for param, value in params.items():
        rule = base.rule(param)
        if rule is not None and not rule.admits(value):
            skipped.append(param)
            continue
        if isinstance(value, float) and not math.isfinite(value):
            skipped.append(param)
            continue
        fixed[param] = value
    for rule_data in data["rules"]:
        if rule_data["param"] in fixed:
            rule_data["default"] = fixed[rule_data["param"]]
    data["defaults"]["fixed"] = fixed or None
    return StandardDocument.model_validate(data), skipped


def _publish(
    session: Session,
    principal: Principal,
    name: str,
    document: StandardDocument,
    changelog: str,
) -> tuple[StandardVersion, StandardDiff]:
    if document.name != name:
        raise InvalidInput.at(
            "name", f"document name {document.name!r} does not match standard {name!r}"
        )
    standard = repository.get_standard(session, principal.team_id, name, lock=True)
    if standard is None:
        raise NotFound(f"standard {name!r} not found")
    number = repository.max_version(session, standard.id)
    previous = repository.get_version(session, standard.id, number)
    assert previous is not None
    version = _add_version(session, principal, standard, number + 1, document, changelog)
    changes = diff_documents(
        document_of(previous), document, from_version=number, to_version=number + 1
    )
    _emit_version(session, principal, WebhookEvent.STANDARD_PUBLISHED, version)
    return version, changes


def _add_version(
    session: Session,
    principal: Principal,
    standard: Standard,
    number: int,
    document: StandardDocument,
    changelog: str,
) -> StandardVersion:
    try:
        with session.begin_nested():
            return repository.add_version(
                session,
                standard,
                version=number,
                document=document.model_dump(mode="json"),
                author=principal.actor,
                changelog=changelog.strip()[:2000],
            )
    except IntegrityError:
        raise Conflict(
            f"version {number} of {standard.name!r} was published concurrently; retry"
        ) from None


def _check(version: StandardVersion, spec: Mapping[str, Any]) -> tuple[dict[str, Any], CheckReport]:
    doc = document_of(version)
    merged, applied = apply_defaults(spec, doc)
    violations = check_spec(merged, doc)
    warnings = scale_warnings(merged, doc)
    if version.status == "deprecated":
        warnings.insert(0, f"{version_ref(version)} is deprecated")
    override = _override_reason(spec)
    report = CheckReport.model_validate(
        {
            "ok": not violations,
            "admissible": not violations or override is not None,
            "standard": version_ref(version),
            "status": version.status,
            "violations": violations,
            "warnings": warnings,
            "defaults_applied": applied,
            "override": override,
        }
    )
    return merged, report


def _override_reason(spec: Mapping[str, Any]) -> str | None:
    override = spec.get("override")
    if isinstance(override, Mapping):
        reason = override.get("reason")
        if isinstance(reason, str) and reason.strip():
            return reason.strip()
    return None


def _standard(session: Session, team_id: int, name: str) -> Standard:
    standard = repository.get_standard(session, team_id, name)
    if standard is None:
        raise NotFound(f"standard {name!r} not found")
    return standard


def _audit(
    session: Session,
    principal: Principal,
    action: str,
    version: StandardVersion,
    details: dict[str, Any],
) -> None:
    audit.record(
        session,
        team_id=principal.team_id,
        actor=principal.actor,
        action=action,
        object_type="standard",
        object_id=version_ref(version),
        details={
            "name": version.standard.name,
            "version": version.version,
            "changelog": version.changelog,
            **details,
        },
    )


def _emit_version(
    session: Session, principal: Principal, event: WebhookEvent, version: StandardVersion
) -> None:
    webhooks.emit(session, team_id=principal.team_id, event=event,
                  payload=webhooks.payloads.standard_version(version))
