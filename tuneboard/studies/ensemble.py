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

The service flushes and never commits.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from tuneboard import audit
from tuneboard.db.models import Ensemble, Study
from tuneboard.errors import Conflict, InvalidInput, NotFound
from tuneboard.queue import ENSEMBLE_TASK, send_task_after_commit
from tuneboard.spec import StudySpec, catalog
from tuneboard.studies import dispatch
from tuneboard.studies import ensemble_repository as repo
from tuneboard.teams import Principal

__all__ = ["EVALUATED_METRICS", "latest_ensemble", "request_ensemble"]

# What an ensemble can be scored by: the metrics of the validation split.
EVALUATED_METRICS: frozenset[str] = frozenset(
    {"val_loss"}
    | {f"val_{m}" for m in (*catalog.CLASSIFICATION_METRICS, *catalog.REGRESSION_METRICS)}
)


def _ensemblable_spec(study: Study) -> StudySpec:
    """The study's spec, or a Conflict saying why its trials cannot be ensembled."""
    spec = study.spec_model
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


def request_ensemble(session: Session, principal: Principal, study: Study, k: int) -> Ensemble:
    """A pending ensemble of the study's ``k`` best complete trials, sent to a worker once the
    request commits; audited. 422 for ``k`` < 2, 409 when the study has fewer such trials."""
    if k < 2:
        raise InvalidInput.at("k", f"an ensemble needs at least 2 members, not {k}")
    spec = _ensemblable_spec(study)
    members = repo.top_checkpointed_trials(session, study, k)
    if len(members) < k:
        raise Conflict(
            f"k is {k} but the study has {len(members)} complete trial(s) with checkpoints.",
            [{"field": "k", "reason": f"only {len(members)} complete trial(s) with checkpoints"}],
        )
    ensemble = Ensemble(study_id=study.id, k=k, members=[t.number for t in members],
                        metric=spec.metrics[0], created_by=principal.actor)
    session.add(ensemble)
    session.flush()
    audit.record(session, team_id=principal.team_id, actor=principal.actor,
                 action="ensemble.create", object_type="ensemble", object_id=ensemble.id,
                 details={"study_id": study.id, "k": k, "members": ensemble.members})
    send_task_after_commit(session, ENSEMBLE_TASK, [ensemble.id], dispatch.queue_of(study))
    return ensemble


def latest_ensemble(session: Session, study: Study) -> Ensemble:
    """The study's most recently asked-for ensemble; 404 when it has none."""
    ensemble = repo.latest_ensemble(session, study.id)
    if ensemble is None:
        raise NotFound(f"Study {study.id} has no ensemble yet; POST one first.")
    return ensemble
