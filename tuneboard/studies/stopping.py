"""The study's ``stopping`` rule, applied by the dispatcher: a reason to end the study now, or None.

What it relies on and keeps:

- It is asked under the study row lock, before the dispatcher creates trials; a reason means
  "create no more", and the study ends ``completed`` (with the reason) once no trial is active.
  Asked again after every finished trial, so a reason that no longer holds (a stability re-run
  made a candidate the new best accepted trial) lets the study go on.
- Under a standard the plateau follows the best *accepted* value: a trial counts once its
  verdict says accepted (with no acceptance criteria every complete trial is). Stability re-runs
  are evidence for their candidate, not search progress: they are not counted.
- With no best value yet there is nothing to plateau on, and the rule waits (the budget ends
  such a study).
- After an extension (``studies.stopping_since``) the rule judges only trials numbered from
  there on: an extended study gets at least ``patience`` (or ``min_n_trials``) new trials.
- Optuna's Terminator reads the study over ``SqlStorage`` and fits a Gaussian process (torch):
  it runs only once enough trials are complete, which never happens inside ``POST /studies`` or
  an extension, so the API process never loads torch for it.
"""

from __future__ import annotations

import warnings

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.terminator import RegretBoundEvaluator, StaticErrorEvaluator, Terminator
from sqlalchemy.orm import Session

from tuneboard.db.models import Study
from tuneboard.optimization.storage import SqlStorage
from tuneboard.spec import StoppingSpec, StudySpec, TerminatorSpec
from tuneboard.spec.states import TrialState
from tuneboard.studies import repository as repo

__all__ = ["stop_reason"]


def stop_reason(session: Session, study: Study, spec: StudySpec) -> str | None:
    """Why the study should stop now under ``spec.stopping``; None to go on."""
    rule = spec.stopping
    if rule is None:
        return None
    if rule.terminator is not None:
        return _terminator(session, study, spec, rule.terminator)
    return _plateau(session, study, spec, rule)


def _plateau(session: Session, study: Study, spec: StudySpec, rule: StoppingSpec) -> str | None:
    assert rule.patience is not None
    patience, min_delta = rule.patience, rule.min_delta or 0.0
    accepted_only = study.standard_version_id is not None
    window = repo.last_finished_judged(session, study, patience)
    if len(window) < patience:
        return None
    maximize = study.maximizes
    best_before = repo.best_value_excluding(
        session, study, [row.id for row in window], accepted_only=accepted_only
    )
    if best_before is None:
        return None
    recent = [
        row.value for row in window
        if row.state == TrialState.COMPLETE and row.value is not None
        and (row.accepted or not accepted_only)
    ]
    best = best_before
    if recent:
        best_recent = max(recent) if maximize else min(recent)
        gain = best_recent - best_before if maximize else best_before - best_recent
        if gain > min_delta:
            return None
        best = max(best, best_recent) if maximize else min(best, best_recent)
    which = "accepted " if accepted_only else ""
    return (
        f"stopping.patience: the best {which}{spec.metrics[0]} ({best:.6g}) did not "
        f"improve by more than {min_delta:g} over the last {patience} finished trials"
    )


def _terminator(
    session: Session, study: Study, spec: StudySpec, rule: TerminatorSpec
) -> str | None:
    if repo.count_complete_judged(session, study) < rule.min_n_trials:
        return None
    url = session.get_bind().engine.url.render_as_string(hide_password=False)
    loaded = optuna.load_study(study_name=study.optuna_name, storage=SqlStorage(url))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        terminator = Terminator(
            improvement_evaluator=RegretBoundEvaluator(
                min_n_trials=rule.min_n_trials, seed=spec.sampler.seed
            ),
            error_evaluator=StaticErrorEvaluator(rule.regret_bound),
            min_n_trials=rule.min_n_trials,
        )
        try:
            stop = terminator.should_terminate(loaded)
        except ValueError:  # no parameter common to every trial: no regret bound to compute
            return None
    if not stop:
        return None
    return (
        "stopping.terminator: Optuna's Terminator bounds the regret still to gain below "
        f"regret_bound={rule.regret_bound:g}"
    )
