"""Studies that go on: extending a finished study, and cloning a study into a new one.

- **Extend** continues the same study: the same Optuna study, so the sampler sees every trial
  it ran before. The budget is raised (``n_trials`` more sampler trials than it has created,
  and, with a timeout, ``timeout_s`` more seconds from now), the study is active again and the
  dispatcher creates the new trials. The stopping rule starts afresh: it judges only trials
  numbered from the extension on (``studies.stopping_since``). A completed (stopped or not) or
  cancelled study can be extended; an active one is a 409, and so is a failed one, whose
  failures would end it again at once. A cancelled study's waiting trials were failed by the
  cancel and still count toward ``budget.max_failed``.
- **Clone** starts a new study from the parent's stored spec (standard defaults already merged)
  with ``changes`` applied as a JSON merge patch (RFC 7386: objects merge key by key, ``null``
  removes a key, anything else replaces), admitted and validated like any new spec, and linked
  to its parent (``parent_id``). It is a new Optuna study: no trials are copied.

Both are audited. Services flush and never commit.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from tuneboard import audit
from tuneboard.db.base import utcnow
from tuneboard.db.models import Study
from tuneboard.errors import Conflict, InvalidInput
from tuneboard.spec import StudySpec, spec_hash
from tuneboard.spec.states import StudyState
from tuneboard.studies import dispatch, service
from tuneboard.studies import repository as repo
from tuneboard.teams import Principal

__all__ = ["CloneRequest", "ExtendRequest", "clone_study", "extend_study", "merge_patch"]


class ExtendRequest(BaseModel):
    """How much more a finished study may spend."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={"examples": [{"n_trials": 20, "timeout_s": 1800}]},
    )

    n_trials: int = Field(
        ge=1, le=100_000, description="Sampler trials to run beyond those created so far."
    )
    timeout_s: float | None = Field(
        None,
        gt=0,
        description="Seconds the extension may run, from now. Left out, a study with a "
        "timeout gets its budget.timeout_s again.",
    )


class CloneRequest(BaseModel):
    """Changes to the parent's spec, as a JSON merge patch."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"changes": {"name": "digits-mlp-wider",
                                      "search_space": {"hidden": {"type": "int", "low": 64,
                                                                  "high": 1024, "step": 64}}}}]
        },
    )

    changes: dict[str, Any] = Field(default_factory=dict)


def merge_patch(target: Any, patch: Any) -> Any:
    """``patch`` applied to ``target`` as RFC 7386 says; neither is changed."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def extend_study(
    session: Session, principal: Principal, study_id: int, request: ExtendRequest
) -> Study:
    """Raise the budget of a finished study and dispatch its new trials."""
    service.get_study(session, principal, study_id)  # another team's study is a 404
    study = repo.lock_study(session, study_id)
    assert study is not None
    spec = study.spec_model
    if spec is None:
        raise Conflict(f"study {study_id} was created through Optuna's API and has no spec")
    if study.state.is_active():
        raise Conflict(
            f"study {study.id} is {study.state}; extend it once it has finished",
            {"state": study.state},
        )
    if study.state == StudyState.FAILED:
        raise Conflict(
            f"study {study.id} failed ({study.error}); clone it to try again",
            {"state": study.state},
        )
    now = utcnow()
    budget = spec.budget
    granted = request.timeout_s if request.timeout_s is not None else budget.timeout_s
    elapsed = (now - study.started_at).total_seconds() if study.started_at else 0.0
    raised = budget.model_copy(update={
        "n_trials": study.sampler_trials + request.n_trials,
        "timeout_s": elapsed + granted if granted is not None else None,
    })
    try:
        extended = StudySpec.model_validate(
            {**spec.model_dump(mode="json"), "budget": raised.model_dump(mode="json")}
        )
    except ValidationError as exc:
        raise InvalidInput.from_validation_error(exc) from exc
    previous = study.state
    study.spec = extended.model_dump(mode="json")
    study.spec_hash = spec_hash(extended)
    study.state = StudyState.RUNNING if study.started_at else StudyState.QUEUED
    study.finished_at = None
    study.error = None
    study.stop_reason = None
    study.stopping_since = study.next_trial_number
    audit.record(session, team_id=principal.team_id, actor=principal.actor,
                 action="study.extend", object_type="study", object_id=study.id,
                 details={"from_state": previous, "n_trials": request.n_trials,
                          "budget": extended.budget.model_dump(mode="json")})
    session.flush()
    dispatch.dispatch(session, study.id, now)
    return study


def clone_study(
    session: Session, principal: Principal, study_id: int, request: CloneRequest
) -> Study:
    """A new study from the parent's spec with ``request.changes`` merged in."""
    parent = service.get_study(session, principal, study_id)
    spec = parent.spec_model
    if spec is None:
        raise Conflict(f"study {study_id} was created through Optuna's API and has no spec")
    raw = merge_patch(spec.model_dump(mode="json", exclude_none=True), request.changes)
    child, _ = service.create_study(session, principal, raw)
    child.parent_id = parent.id
    audit.record(session, team_id=principal.team_id, actor=principal.actor,
                 action="study.clone", object_type="study", object_id=child.id,
                 details={"parent_id": parent.id, "changes": request.changes})
    session.flush()
    return child
