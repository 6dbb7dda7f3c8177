"""Ensembles of a study's best trials: asked for here, evaluated by a worker.

An ensemble averages the class probabilities (classification) or the predictions (regression)
of the best checkpoints of a study's top-K complete trials and scores the average with the
study metric on the study's validation split, beside the best member alone. The API never
loads a model: asking stores a ``pending`` record naming its members (chosen now, best first)
and sends the ``ENSEMBLE_TASK`` after the commit; a worker of the study's queue evaluates it
(``workers/ensemble.py``). What can be ensembled is decided here, before anything is stored:

- trials of the built-in trainer (their models can be rebuilt from their parameters), scored by
  one validation metric (``val_loss`` or ``val_<m>``) on a holdout split: k-fold trials have
  no single validation split;
- trials that kept ``best`` checkpoints (``callbacks.checkpoint.keep``).

A standard's ``ensemble: {k, min_gain}`` acceptance criterion uses the same rules twice: a
study that could never satisfy it is refused at submission (``check_admissible``), and when a
study under it completes, the dispatcher asks here for one ensemble of its ``k`` best accepted
trials (``judge_finished_study``), in the transaction that finishes the study. That ensemble
carries the criterion's verdict, pending until the worker settles it; one that cannot be
formed is stored at once as failed, its verdict saying why (the semantics are in
``tuneboard.standards.acceptance``).

The service flushes and never commits.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from tuneboard import audit
from tuneboard.db.base import utcnow
from tuneboard.db.models import Ensemble, EnsembleState, Study
from tuneboard.errors import Conflict, InvalidInput, NotFound
from tuneboard.queue import ENSEMBLE_TASK, send_task_after_commit
from tuneboard.spec import StudySpec, catalog
from tuneboard.spec.states import StudyState
from tuneboard.standards import acceptance
from tuneboard.standards.schemas import EnsembleVerdict, StandardDocument, document_of, version_ref
from tuneboard.studies import ensemble_repository as repo
from tuneboard.teams import Principal

__all__ = [
    "EVALUATED_METRICS",
    "check_admissible",
    "find_latest_ensemble",
    "judge_finished_study",
    "latest_ensemble",
    "request_ensemble",
]

# What an ensemble can be scored by: the metrics of the validation split.
EVALUATED_METRICS: frozenset[str] = frozenset(
    {"val_loss"}
    | {f"val_{m}" for m in (*catalog.CLASSIFICATION_METRICS, *catalog.REGRESSION_METRICS)}
)


def _ensemblable(spec: StudySpec | None) -> StudySpec:
    """The spec, or a Conflict saying why the trials of its study cannot be ensembled."""
    if spec is None or spec.objective.builtin is None:
        raise Conflict(
            "Only studies of the built-in trainer can be ensembled: their models are rebuilt "
            "from the trials' parameters.",
            [{"field": "objective", "reason": "not the built-in trainer"}],
        )
    if spec.is_multi_objective:
        raise Conflict("An ensemble is scored by one metric; this study optimises several.",
                       [{"field": "objective.metric", "reason": "several metrics"}])
    metric = spec.metrics[0]
    if metric not in EVALUATED_METRICS:
        raise Conflict(
            f"An ensemble is scored on the validation split; the study metric {metric!r} is "
            f"not one of its metrics (val_loss, val_<metric>).",
            [{"field": "objective.metric", "reason": "not a validation metric"}],
        )
    if spec.objective.validation.k_folds is not None:
        raise Conflict(
            "Cross-validated trials have no single validation split to ensemble on.",
            [{"field": "objective.validation.k_folds", "reason": "k-fold"}],
        )
    checkpoint = spec.callbacks.checkpoint
    if checkpoint is None or "best" not in checkpoint.keep:
        raise Conflict(
            "The study keeps no best checkpoints; an ensemble needs callbacks.checkpoint.keep "
            "to include best.",
            [{"field": "callbacks.checkpoint.keep", "reason": "best not kept"}],
        )
    return spec


def _add(
    session: Session,
    study: Study,
    spec: StudySpec | None,
    *,
    k: int,
    members: list[int],
    team_id: int | None,
    actor: str,
    verdict: EnsembleVerdict | None = None,
    error: str | None = None,
    now: datetime | None = None,
) -> Ensemble:
    """Store an ensemble, audited. A pending one (``spec`` ensemblable) is sent to the study's
    queue after the commit; one with an ``error`` is stored failed and sent nowhere."""
    ensemble = Ensemble(study_id=study.id, k=k, members=members, created_by=actor,
                        metric=spec.metrics[0] if spec is not None else "")
    if verdict is not None:
        ensemble.verdict = verdict.model_dump(mode="json")
    if error is not None:
        ensemble.state, ensemble.error = EnsembleState.FAILED, error
        ensemble.finished_at = now or utcnow()
    session.add(ensemble)
    session.flush()
    audit.record(session, team_id=team_id, actor=actor, action="ensemble.create",
                 object_type="ensemble", object_id=ensemble.id,
                 details={"study_id": study.id, "k": k, "members": members,
                          "criterion": verdict is not None})
    if error is None:
        assert spec is not None
        send_task_after_commit(session, ENSEMBLE_TASK, [ensemble.id], spec.resources.queue)
    return ensemble


def request_ensemble(session: Session, principal: Principal, study: Study, k: int) -> Ensemble:
    """A pending ensemble of the study's ``k`` best complete trials, sent to a worker once the
    request commits; audited. 422 for ``k`` < 2, 409 when the study has fewer such trials."""
    if k < 2:
        raise InvalidInput.at("k", f"an ensemble needs at least 2 members, not {k}")
    spec = _ensemblable(study.spec_model)
    members = repo.top_checkpointed_trials(session, study, k)
    if len(members) < k:
        raise Conflict(
            f"k is {k} but the study has {len(members)} complete trial(s) with checkpoints.",
            [{"field": "k", "reason": f"only {len(members)} complete trial(s) with checkpoints"}],
        )
    return _add(session, study, spec, k=k, members=[t.number for t in members],
                team_id=principal.team_id, actor=principal.actor)


def check_admissible(spec: StudySpec, document: StandardDocument, standard: str) -> None:
    """Refuse (422 at the spec field in the way) a study under ``standard`` whose acceptance
    asks for an ensemble the study could never form."""
    criterion = document.ensemble
    if criterion is None:
        return
    asks = f"standard {standard}'s acceptance asks for an ensemble of {criterion.k} trials"
    try:
        _ensemblable(spec)
    except Conflict as exc:
        details = [{"field": d["field"], "reason": f"{d['reason']}; {asks}"}
                   for d in exc.details]
        raise InvalidInput(f"{details[0]['field']}: {exc.message} ({asks})", details) from None
    if spec.budget.n_trials < criterion.k:
        raise InvalidInput.at(
            "budget.n_trials", f"{spec.budget.n_trials} trial(s) cannot make {criterion.k}; {asks}"
        )


def judge_finished_study(session: Session, study: Study, now: datetime) -> Ensemble | None:
    """The ensemble that judges the just-completed ``study`` (locked by the caller) against its
    standard's ensemble criterion; None when it has none. Never raises for a study that cannot
    meet it: the ensemble is then stored failed, its verdict saying why."""
    version = study.standard_version
    if version is None or study.state is not StudyState.COMPLETED:
        return None
    criterion = document_of(version).ensemble
    if criterion is None:
        return None
    ref = version_ref(version)
    spec = study.spec_model
    k = criterion.k
    reason: str | None = None
    try:
        _ensemblable(spec)
        members = [t.number for t in repo.top_checkpointed_trials(session, study, k,
                                                                  accepted_only=True)]
        if len(members) < k:
            reason = (f"k is {k} but the study has {len(members)} accepted complete trial(s) "
                      f"with checkpoints")
    except Conflict as exc:
        members, reason = [], exc.message
    verdict = acceptance.pending_ensemble(criterion, standard=ref)
    return _add(session, study, spec, k=k, members=members, team_id=study.team_id,
                actor=f"standard:{ref}", error=reason, now=now,
                verdict=verdict if reason is None else acceptance.fail_ensemble(verdict, reason))


def latest_ensemble(session: Session, study: Study) -> Ensemble:
    """The study's most recently asked-for ensemble; 404 when it has none."""
    ensemble = find_latest_ensemble(session, study)
    if ensemble is None:
        raise NotFound(f"Study {study.id} has no ensemble yet; POST one first.")
    return ensemble


def find_latest_ensemble(session: Session, study: Study) -> Ensemble | None:
    """The study's most recently asked-for ensemble, if any (the study's page shows it)."""
    return repo.latest_ensemble(session, study.id)
