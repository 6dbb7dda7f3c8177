"""Optuna's storage as one team sees it: the use cases behind ``/api/v1/optuna``.

Decisions:
- A study created through Optuna is a study of the key's team like any other (it shows in the
  team's lists and leaderboards), without a spec. Its Optuna name is kept as
  ``team<id>/<name>``, so two teams may both call a study "mnist"; clients see the name they
  gave. Studies created from a spec keep the Optuna name the API gave them.
- A study or trial of another team is not found, exactly as one that does not exist.
- Optuna's own operations run on ``SqlStorage``, each in a transaction of its own (as for the
  workers); this module reads scopes and writes our own columns (team, standard, verdict,
  audit) in the caller's session, which flushes here and commits at the edge. A route never
  holds its session's write transaction open across a ``SqlStorage`` call: on SQLite that
  transaction holds the database's one write lock.
- A study names a standard with the user attribute ``tuneboard.standard`` ("name" or
  "name@N"), pinned when set and only while the study has no trials. A parameter value the
  standard's rules do not admit is refused when the trial sets it. Standards with stability
  criteria are refused: their seed re-runs are scheduled by our dispatcher, which does not run
  Optuna's studies.
- A finished trial of such a study is judged on its final metrics: its numeric user
  attributes, and its objective values as "value" (first objective) and "values_<i>", or under
  the names the study gives in its user attribute ``tuneboard.metrics`` (a list, one per
  objective).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from optuna.exceptions import DuplicatedStudyError, UpdateFinishedTrialError
from optuna.trial import FrozenTrial
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tuneboard import audit
from tuneboard.db.base import utcnow
from tuneboard.db.models import StandardVersion, Study
from tuneboard.errors import Conflict, InvalidInput, NotFound, StandardViolation
from tuneboard.spec import Direction
from tuneboard.spec.states import StudyState
from tuneboard.standards import service as standards
from tuneboard.standards.rules import check_spec
from tuneboard.standards.schemas import StabilityCriterion, document_of, version_ref
from tuneboard.studies import remote_repository as repo
from tuneboard.studies import repository as studies_repo
from tuneboard.studies import verdicts
from tuneboard.studies.remote_repository import StudyScope, TrialScope

STANDARD_ATTR = "tuneboard.standard"
METRICS_ATTR = "tuneboard.metrics"
# Ids are 32-bit integer columns: a larger one names nothing (and must not reach the driver).
MAX_ID = 2**31 - 1


class DuplicatedStudy(Conflict):
    code = "duplicated_study"


class TrialFinished(Conflict):
    code = "trial_finished"


@contextmanager
def optuna_errors() -> Iterator[None]:
    """``SqlStorage``'s exceptions (Optuna's) as ours."""
    try:
        yield
    except KeyError as err:
        raise NotFound(str(err.args[0]) if err.args else "not found") from None
    except DuplicatedStudyError as err:
        raise DuplicatedStudy(str(err)) from None
    except UpdateFinishedTrialError as err:
        raise TrialFinished(str(err)) from None
    except ValueError as err:
        raise InvalidInput(str(err), [{"field": "body", "reason": str(err)}]) from None


def optuna_name(team_id: int, name: str) -> str:
    return f"team{team_id}/{name}"


def client_name(team_id: int, stored: str) -> str:
    """The name the team's clients know the study by."""
    return stored.removeprefix(f"team{team_id}/")


# --- scopes ---------------------------------------------------------------------------------


def study_scope(session: Session, team_id: int, study_id: int) -> StudyScope:
    scope = repo.study_scope(session, team_id, study_id) if 0 < study_id <= MAX_ID else None
    if scope is None:
        raise NotFound(f"No study with study_id {study_id} exists.")
    return scope


def trial_scope(session: Session, team_id: int, trial_id: int) -> TrialScope:
    scope = repo.trial_scope(session, team_id, trial_id) if 0 < trial_id <= MAX_ID else None
    if scope is None:
        raise NotFound(f"No trial with trial_id {trial_id} exists.")
    return scope


# --- studies --------------------------------------------------------------------------------


def create_study(
    session: Session, team_id: int, actor: str, directions: Sequence[Direction], name: str
) -> Study:
    """A running study of the team with no spec; DuplicatedStudy when the team has the name."""
    stored = optuna_name(team_id, name)
    taken = DuplicatedStudy(f"Another study with name '{name}' already exists.")
    if repo.optuna_name_taken(session, stored):
        raise taken
    now = utcnow()
    study = Study(
        team_id=team_id,
        name=name[:255],
        optuna_name=stored,
        directions=list(directions),
        state=StudyState.RUNNING,
        user_attrs={},
        system_attrs={},
        created_by=actor,
        created_at=now,
        started_at=now,
    )
    try:
        with session.begin_nested():
            session.add(study)
    except IntegrityError:
        raise taken from None
    audit.record(session, team_id=team_id, actor=actor, action="study.create",
                 object_type="study", object_id=study.id, details={"name": name, "via": "optuna"})
    return study


def study_id_by_name(session: Session, team_id: int, name: str) -> int:
    study_id = repo.study_id_by_optuna_name(session, team_id, [optuna_name(team_id, name), name])
    if study_id is None:
        raise NotFound(f"No study with name '{name}' exists.")
    return study_id


def list_studies(
    session: Session, team_id: int, *, limit: int, after_id: int | None = None
) -> list[Study]:
    return repo.team_studies(session, team_id, limit=limit, after_id=after_id)


def get_study(session: Session, team_id: int, study_id: int) -> Study:
    study = studies_repo.get_study(session, team_id, study_id) if 0 < study_id <= MAX_ID else None
    if study is None:
        raise NotFound(f"No study with study_id {study_id} exists.")
    return study


def check_deletable(session: Session, team_id: int, study_id: int) -> None:
    """Only studies made through Optuna may be deleted through it (the API deletes none)."""
    if get_study(session, team_id, study_id).spec is not None:
        raise Conflict(f"study {study_id} was created from a spec; it cannot be deleted")


def record_deletion(session: Session, team_id: int, actor: str, study_id: int) -> None:
    audit.record(session, team_id=team_id, actor=actor, action="study.delete",
                 object_type="study", object_id=study_id, details={"via": "optuna"})


def set_standard(session: Session, team_id: int, actor: str, study_id: int, ref: Any) -> None:
    """Pin the standard ``ref`` names for the study's trials, and keep ``ref`` as the study's
    ``tuneboard.standard`` user attribute."""
    study = get_study(session, team_id, study_id)
    field = f"user_attrs.{STANDARD_ATTR}"
    if not isinstance(ref, str):
        raise InvalidInput.at(field, "must name a standard as 'name' or 'name@N'")
    if study.spec is not None:
        raise Conflict(f"study {study_id} was created from a spec; its standard is the spec's")
    try:
        version = standards.resolve(session, team_id, ref)
    except NotFound as err:
        raise InvalidInput.at(field, err.message) from None
    except InvalidInput as err:
        raise InvalidInput.at(field, err.message.removeprefix("standard: ")) from None
    if any(isinstance(c, StabilityCriterion) for c in document_of(version).acceptance):
        raise InvalidInput.at(
            field,
            f"{version_ref(version)} has stability criteria, whose seed re-runs only studies "
            "created from a spec get",
        )
    if study.standard_version_id != version.id and repo.has_trials(session, study.id):
        raise Conflict(f"study {study_id} has trials already; its standard cannot change")
    study.user_attrs = {**(study.user_attrs or {}), STANDARD_ATTR: ref}
    study.standard_version_id = version.id
    session.flush()
    audit.record(session, team_id=team_id, actor=actor, action="study.standard",
                 object_type="study", object_id=study.id,
                 details={"standard": version_ref(version), "via": "optuna"})


# --- trials ---------------------------------------------------------------------------------


def check_param(
    session: Session, standard_version_id: int | None, name: str, value: Any
) -> None:
    """StandardViolation (422) when the study's standard does not admit ``value`` for ``name``;
    the details carry the rule and its rationale."""
    if standard_version_id is None:
        return
    version = session.get(StandardVersion, standard_version_id)
    if version is None:
        return
    violations = check_spec({"fixed": {name: value}}, document_of(version))
    if not violations:
        return
    details = []
    for v in violations:
        reason = v.reason.removeprefix(f"{v.field}: ")
        details.append({"field": f"params.{name}", "reason": reason, "rule": v.rule,
                        "rationale": v.rationale, "standard": version_ref(version)})
    first = details[0]
    rationale = f"; rationale: {first['rationale']}" if first["rationale"] else ""
    raise StandardViolation(
        f"params.{name}: {first['reason']} in standard {first['standard']}{rationale}", details
    )


def final_metrics(trial: FrozenTrial, study_user_attrs: Mapping[str, Any]) -> dict[str, float]:
    """What the verdict judges (see the module's docstring)."""
    metrics = {
        key: float(value)
        for key, value in trial.user_attrs.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    values = trial.values or []
    names = study_user_attrs.get(METRICS_ATTR)
    if not isinstance(names, list) or len(names) != len(values):
        names = ["value"] if len(values) == 1 else [f"values_{i}" for i in range(len(values))]
    for name, value in zip(names, values, strict=True):
        if isinstance(name, str):
            metrics[name] = float(value)
    if values:
        metrics.setdefault("value", float(values[0]))
    return metrics


def judge(session: Session, scope: TrialScope, trial: FrozenTrial) -> None:
    """Store the verdict of a finished trial of a study that names a standard."""
    if scope.standard_version_id is None or not trial.state.is_finished():
        return
    row = studies_repo.get_trial_by_id(session, scope.trial_id)
    study = session.get(Study, scope.study_id)
    if row is None or study is None:
        return
    verdicts.judge(session, row, final_metrics(trial, study.user_attrs or {}))
