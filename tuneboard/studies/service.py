"""Study use cases. Services flush and never commit: the request or the task commits, and
trial tasks are sent after that commit (``dispatch.dispatch`` / ``enqueue_after_commit``)."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from tuneboard import audit
from tuneboard.db.base import utcnow
from tuneboard.db.models import StandardVersion, Study, Trial
from tuneboard.errors import Conflict, InvalidInput, NotFound, StandardViolation
from tuneboard.queue import enqueue_after_commit
from tuneboard.studies import dispatch
from tuneboard.studies import repository as repo
from tuneboard.studies.schemas import StudySpec, spec_hash
from tuneboard.teams import Principal


def canonical_hash(payload: Any) -> str:
    return hashlib.sha256(
        json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()


def prepare_spec(
    session: Session, team_id: int, raw: dict[str, Any]
) -> tuple[StudySpec, StandardVersion | None, list[dict[str, Any]]]:
    """Merge the named standard's defaults, validate, and check the standard's rules.

    Returns the spec, the pinned standard version and the rule violations (empty if none).
    """
    from tuneboard.standards import service as standards  # standards imports studies schemas

    if not isinstance(raw, dict):
        raise InvalidInput("body: a study spec must be a JSON object", [{"field": "body",
                           "reason": "expected an object"}])
    version: StandardVersion | None = None
    merged = raw
    ref = raw.get("standard")
    if ref is not None:
        if not isinstance(ref, str):
            raise InvalidInput("standard: must be a string like 'name' or 'name@3'",
                               [{"field": "standard", "reason": "expected a string"}])
        try:
            version = standards.resolve(session, team_id, ref)
        except NotFound as err:
            raise InvalidInput(f"standard: {err.message}",
                               [{"field": "standard", "reason": err.message}]) from err
        merged, _ = standards.apply_defaults(raw, version)
    try:
        spec = StudySpec.model_validate(merged)
    except ValidationError as exc:
        raise InvalidInput.from_validation_error(exc) from exc
    violations = standards.violations(spec, version) if version is not None else []
    return spec, version, violations


def create_study(
    session: Session,
    principal: Principal,
    raw: dict[str, Any],
    *,
    idempotency_key: str | None = None,
) -> tuple[Study, bool]:
    """Validate and create a study with its first trials; returns (study, created)."""
    request_hash = canonical_hash(raw)
    if idempotency_key is not None:
        existing = repo.get_by_idempotency_key(session, principal.team_id, idempotency_key)
        if existing is not None:
            if existing.request_hash != request_hash:
                raise Conflict(
                    "Idempotency-Key was already used with a different request body",
                    {"idempotency_key": idempotency_key, "study_id": existing.id},
                )
            return existing, False

    spec, version, violations = prepare_spec(session, principal.team_id, raw)
    if violations and spec.override is None:
        ref = f"{version.standard.name}@{version.version}" if version else None
        first = violations[0]
        raise StandardViolation(
            f"the spec breaks standard {ref}: {first.get('message') or first}",
            {"standard": ref, "violations": violations,
             "hint": "add override: {reason: ...} to submit anyway; the reason is recorded"},
        )

    spec_json = spec.model_dump(mode="json")
    study = Study(
        team_id=principal.team_id,
        name=spec.name,
        optuna_name=f"team{principal.team_id}-{spec.name}-{uuid.uuid4().hex[:12]}",
        directions=list(spec.directions),
        state="queued",
        spec=spec_json,
        spec_hash=spec_hash(spec),
        standard_version_id=version.id if version else None,
        override_reason=spec.override.reason if (spec.override and violations) else None,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        user_attrs={},
        system_attrs={},
        created_by=principal.actor,
    )
    session.add(study)
    session.flush()
    audit.record(session, team_id=principal.team_id, actor=principal.actor, action="study.create",
                 object_type="study", object_id=study.id,
                 details={"name": spec.name, "spec_hash": study.spec_hash,
                          "standard_version_id": study.standard_version_id})
    if study.override_reason is not None:
        audit.record(session, team_id=principal.team_id, actor=principal.actor,
                     action="study.override", object_type="study", object_id=study.id,
                     details={"reason": study.override_reason, "violations": violations})
    dispatch.dispatch(session, study.id)
    return study, True


def get_study(session: Session, principal: Principal, study_id: int) -> Study:
    study = repo.get_study(session, principal.team_id, study_id)
    if study is None:
        raise NotFound(f"study {study_id} not found")
    return study


def cancel_study(session: Session, principal: Principal, study_id: int) -> Study:
    """Stop dispatching; waiting trials never start; running ones stop within an epoch."""
    get_study(session, principal, study_id)
    study = repo.lock_study(session, study_id)
    assert study is not None
    if study.state in dispatch.ACTIVE_STUDY_STATES:
        now = utcnow()
        study.state = "cancelled"
        study.finished_at = now
        repo.fail_waiting_trials(session, study.id, "study cancelled before this trial started",
                                 now)
        audit.record(session, team_id=principal.team_id, actor=principal.actor,
                     action="study.cancel", object_type="study", object_id=study.id)
    return study


def enqueue_trial(
    session: Session, principal: Principal, study_id: int, params: dict[str, Any]
) -> Trial:
    """A trial with the given parameters (Optuna's ``enqueue_trial``), outside the sampler budget."""
    from tuneboard.optimization.space import validate_fixed_params

    get_study(session, principal, study_id)
    study = repo.lock_study(session, study_id)
    assert study is not None and study.spec is not None
    if study.state in ("cancelled", "failed"):
        raise Conflict(f"study {study.id} is {study.state}; it takes no more trials")
    spec = StudySpec.model_validate(study.spec)
    try:
        fixed = validate_fixed_params(spec.search_space, params)
    except ValueError as err:
        raise InvalidInput(f"params: {err}", [{"field": "params", "reason": str(err)}]) from err
    if study.state == "completed":
        study.state, study.finished_at = "running", None
    now = utcnow()
    number = repo.allocate_trial_numbers(session, study.id, 1)
    trial = dispatch.new_trial(study, number, origin="manual", now=now,
                               system_attrs={"fixed_params": fixed})
    session.add(trial)
    session.flush()
    audit.record(session, team_id=principal.team_id, actor=principal.actor,
                 action="trial.enqueue", object_type="trial", object_id=f"{study.id}/{number}",
                 details={"params": fixed})
    enqueue_after_commit(session, [(trial.id, dispatch.queue_of(study.spec))])
    return trial
