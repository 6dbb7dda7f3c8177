"""Verdicts: each finished trial of a study that names a standard is judged against the
standard's acceptance criteria, and the evidence per criterion is stored with the trial.

Stability criteria ("val_accuracy std over 3 seeds <= 0.005") need evidence a single run cannot
give: a candidate that passes every metric criterion gets ``seeds - 1`` re-runs with the same
parameters and other seeds, as extra trials of the study (origin "stability"); when the last of
them finishes, the candidate's verdict is settled from the spread of all runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuneboard.db.base import utcnow
from tuneboard.db.models import FINISHED_TRIAL_STATES, StandardVersion, Study, Trial
from tuneboard.queue import enqueue_after_commit
from tuneboard.standards.acceptance import evaluate
from tuneboard.standards.schemas import (
    StabilityCriterion,
    StandardDocument,
    Verdict,
    version_ref,
)
from tuneboard.studies import dispatch
from tuneboard.studies import repository as repo

FINAL_METRICS_ATTR = "tuneboard:final_metrics"
STABILITY_OF_ATTR = "tuneboard:stability_of"
_SEED_STRIDE = 7919


@lru_cache(maxsize=256)
def _document(version_id: int, document_json: str) -> StandardDocument:
    import json

    return StandardDocument.model_validate(json.loads(document_json))


def document_for(version: StandardVersion) -> StandardDocument:
    import json

    return _document(version.id, json.dumps(version.document, sort_keys=True))


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
    doc = document_for(study.standard_version)
    rerun_of = (trial.system_attrs or {}).get(STABILITY_OF_ATTR)
    if rerun_of is not None:  # a stability re-run, or a retry of one (origin "retry")
        candidate = repo.get_trial(session, study.id, int(rerun_of))
        return _settle_candidate(session, study, doc, candidate) if candidate else None
    if trial.state != "complete":
        _store(trial, _not_complete(trial, study.standard_version))
        return None
    verdict = evaluate(doc.acceptance, encode_metrics(final_metrics),
                       standard=version_ref(study.standard_version))
    if verdict.pending:
        _start_stability_runs(session, study, doc, trial)
    _store(trial, verdict)
    return verdict


def _not_complete(trial: Trial, version: StandardVersion) -> Verdict:
    return Verdict(accepted=False, pending=False, standard=version_ref(version),
                   note=f"trial ended {trial.state}; only complete trials qualify")


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
    from tuneboard.optimization.params import external_params

    runs = _stability_seeds(doc) - 1
    if runs <= 0:
        return
    params = external_params(candidate.params, candidate.distributions)
    first = repo.allocate_trial_numbers(session, study.id, runs)
    now = utcnow()
    trials = [
        dispatch.new_trial(
            study, first + i, origin="stability", now=now,
            seed=((candidate.seed or 0) + _SEED_STRIDE * (i + 1)) % (2**31 - 1),
            system_attrs={"fixed_params": params, STABILITY_OF_ATTR: candidate.number},
        )
        for i in range(runs)
    ]
    session.add_all(trials)
    session.flush()
    enqueue_after_commit(session, [(t.id, dispatch.queue_of(study.spec)) for t in trials])


def _settle_candidate(
    session: Session, study: Study, doc: StandardDocument, candidate: Trial
) -> Verdict | None:
    reruns = list(
        session.scalars(
            select(Trial).where(
                Trial.study_id == study.id, Trial.origin.in_(("stability", "retry"))
            )
        )
    )
    mine = [t for t in reruns if (t.system_attrs or {}).get(STABILITY_OF_ATTR) == candidate.number]
    if any(t.state not in FINISHED_TRIAL_STATES for t in mine):
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
    return verdict
