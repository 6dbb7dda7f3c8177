"""Verdicts: each finished trial of a study that names a standard is judged against the
standard's acceptance criteria, and the evidence per criterion is stored with the trial.

Stability criteria ("val_accuracy std over 3 seeds <= 0.005", "mean >= 0.97 at 95%") need
evidence a single run cannot give: a candidate that passes every metric criterion gets
``seeds - 1`` re-runs with the same parameters and other seeds, as extra trials of the study
(origin "stability"); when the last of them finishes, the candidate's verdict is settled from
all its runs.

Re-runs go only to a candidate that could still change the study's best accepted result: one
that would rank ahead of the current best accepted trial (``best_accepted_trial``: by value in
the study's direction, ties to the lower number), or any candidate while none is accepted. The
others are rejected at once, final and not pending (``accepted`` false, so accepted-only
leaderboards, stopping and warm starts leave them out, as they leave out every trial whose
criteria were not shown to hold). Their unmet stability criteria say "not re-run: cannot beat
best accepted <v> (trial <n>)", and so does the verdict's note. The best accepted value only
ever improves, so a candidate refused once could never have changed it later either.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from tuneboard import webhooks
from tuneboard.db.base import utcnow
from tuneboard.db.models import StandardVersion, Study, Trial
from tuneboard.optimization.constraints import FINAL_METRICS_ATTR as FINAL_METRICS_ATTR
from tuneboard.optimization.params import external_params
from tuneboard.spec.states import TrialOrigin, TrialState
from tuneboard.standards.acceptance import evaluate
from tuneboard.standards.repository import best_accepted_trial
from tuneboard.standards.schemas import (
    StabilityCriterion,
    StandardDocument,
    Verdict,
    document_of,
    version_ref,
)
from tuneboard.studies import dispatch
from tuneboard.studies import repository as repo
from tuneboard.webhooks import WebhookEvent

STABILITY_OF_ATTR = "tuneboard:stability_of"
# Re-run k of a candidate gets the candidate's seed + k * STABILITY_SEED_STRIDE. Trial seeds of
# a study are consecutive (``dispatch.trial_seed``), so a prime stride above any likely trial
# count keeps re-runs clear of other trials' seeds and of neighbouring candidates' re-runs.
STABILITY_SEED_STRIDE = 7919


def encode_metrics(metrics: Mapping[str, float]) -> dict[str, Any]:
    """JSON-safe final metrics (non-finite floats as strings, as everywhere in the store)."""
    out: dict[str, Any] = {}
    for name, value in metrics.items():
        v = float(value)
        out[name] = v if math.isfinite(v) else str(v)
    return out


def judge(session: Session, trial: Trial, final_metrics: Mapping[str, float]) -> Verdict | None:
    """Judge the finished ``trial`` (or settle the candidate it re-runs for a stability
    criterion) and store the verdict. Returns the verdict written, if any. Flushes, never commits.

    Only our columns (``verdict``, ``accepted``) are written: a finished trial's Optuna fields
    never change. The runner records each trial's final metrics under ``FINAL_METRICS_ATTR``
    while the trial still runs; stability settlements read the re-runs' from there.
    """
    study = session.get(Study, trial.study_id)
    if study is None or study.standard_version is None:
        return None
    doc = document_of(study.standard_version)
    rerun_of = (trial.system_attrs or {}).get(STABILITY_OF_ATTR)
    if rerun_of is not None:  # a stability re-run, or a retry of one (origin "retry")
        candidate = repo.get_trial(session, study.id, int(rerun_of))
        return _settle_candidate(session, study, doc, candidate) if candidate else None
    if trial.state != TrialState.COMPLETE:
        _store(trial, _not_complete(trial, study.standard_version))
        return None
    verdict = evaluate(doc.acceptance, encode_metrics(final_metrics),
                       standard=version_ref(study.standard_version))
    if verdict.pending:
        best = best_accepted_trial(session, study)
        if best is None or _ranks_ahead(trial, best, maximize=study.maximizes):
            _start_stability_runs(session, study, doc, trial)
        else:
            verdict = _not_rerun(verdict, best)
    _store(trial, verdict)
    _announce_if_best(session, study, trial)
    return verdict


def _ranks_ahead(candidate: Trial, best: Trial, *, maximize: bool) -> bool:
    """Whether ``candidate`` would come before ``best`` in ``ranked_trials``' order."""
    if candidate.value is None or best.value is None:  # NaN is never ranked
        return candidate.value is not None
    if candidate.value != best.value:
        return candidate.value > best.value if maximize else candidate.value < best.value
    return candidate.number < best.number


def _not_rerun(verdict: Verdict, best: Trial) -> Verdict:
    reason = f"not re-run: cannot beat best accepted {best.value:g} (trial {best.number})"
    criteria = [
        c.model_copy(update={"pending": False, "detail": reason}) if c.pending else c
        for c in verdict.criteria
    ]
    return verdict.model_copy(
        update={"accepted": False, "pending": False, "criteria": criteria, "note": reason}
    )


def _not_complete(trial: Trial, version: StandardVersion) -> Verdict:
    return Verdict(accepted=False, pending=False, standard=version_ref(version),
                   note=f"trial ended {trial.state}; only complete trials qualify")


def _announce_if_best(session: Session, study: Study, trial: Trial) -> None:
    """A trial accepted just now that heads its study's accepted ranking is announced."""
    best = best_accepted_trial(session, study) if trial.accepted else None
    if best is not None and best.id == trial.id:
        params = external_params(trial.params or {}, trial.distributions or {})
        webhooks.emit(session, team_id=study.team_id, event=WebhookEvent.TRIAL_BEST_ACCEPTED,
                      payload=webhooks.payloads.best_accepted(study, trial, params))


def _store(trial: Trial, verdict: Verdict) -> None:
    trial.verdict = verdict.model_dump(mode="json")
    trial.accepted = None if verdict.pending else verdict.accepted


def _stability_seeds(doc: StandardDocument) -> int:
    return max(
        (c.stability.seeds for c in doc.acceptance if isinstance(c, StabilityCriterion)),
        default=1,
    )


def _start_stability_runs(
    session: Session, study: Study, doc: StandardDocument, candidate: Trial
) -> None:
    runs = _stability_seeds(doc) - 1
    if runs <= 0 or not study.state.takes_trials():
        return
    params = external_params(candidate.params, candidate.distributions)
    dispatch.add_trials(
        session,
        study,
        TrialOrigin.STABILITY,
        [
            {
                "seed": ((candidate.seed or 0) + STABILITY_SEED_STRIDE * k) % dispatch.SEED_MODULUS,
                "system_attrs": {"fixed_params": params, STABILITY_OF_ATTR: candidate.number},
            }
            for k in range(1, runs + 1)
        ],
        now=utcnow(),
    )


def _settle_candidate(
    session: Session, study: Study, doc: StandardDocument, candidate: Trial
) -> Verdict | None:
    reruns = repo.trials_of_origin(session, study.id, (TrialOrigin.STABILITY, TrialOrigin.RETRY))
    mine = [t for t in reruns if (t.system_attrs or {}).get(STABILITY_OF_ATTR) == candidate.number]
    if any(not t.state.is_finished() for t in mine):
        return None
    # A lost re-run was retried: its failed attempt is replaced, not evidence.
    retried = {t.retry_of for t in mine if t.retry_of is not None}
    mine = [t for t in mine if t.number not in retried]
    metrics = (candidate.system_attrs or {}).get(FINAL_METRICS_ATTR, {})
    stability_metrics = {c.stability.metric for c in doc.acceptance
                         if isinstance(c, StabilityCriterion)}
    runs = [metrics] + [(t.system_attrs or {}).get(FINAL_METRICS_ATTR, {}) for t in mine]
    stability = {m: [run.get(m) for run in runs] for m in stability_metrics}
    assert study.standard_version is not None
    verdict = evaluate(doc.acceptance, metrics, stability,
                       standard=version_ref(study.standard_version))
    if verdict.pending:  # a re-run failed or was lost: the evidence will never come
        verdict = verdict.model_copy(update={"pending": False, "accepted": False})
    _store(candidate, verdict)
    _announce_if_best(session, study, candidate)
    return verdict
