"""Verdicts against a standard, stability re-runs included, on the real databases."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.tuneboard.standards.support import GOOD_SPEC, baseline
from tuneboard import standards
from tuneboard.db import session_scope
from tuneboard.db.models import Trial
from tuneboard.studies import service, verdicts
from tuneboard.teams.service import authenticate, create_team

GOOD = {"val_accuracy": 0.98, "generalization_gap": 0.01}


@pytest.fixture
def study_id(db_url: str) -> int:
    with session_scope(db_url) as session:
        _, key = create_team(session, "team-a")
        principal = authenticate(session, key)
        standards.create_standard(session, principal, baseline())
        study, _ = service.create_study(
            session, principal, {**GOOD_SPEC, "budget": {"n_trials": 1, "max_parallel": 1}}
        )
        return study.id


def _finish(session: Session, trial: Trial, metrics: dict[str, float]) -> None:
    """What the runner does: final metrics recorded while running, then the outcome."""
    trial.system_attrs = {
        **(trial.system_attrs or {}),
        verdicts.FINAL_METRICS_ATTR: verdicts.encode_metrics(metrics),
    }
    value = metrics["val_accuracy"]
    trial.state, trial.value, trial.values = "complete", value, [value]
    trial.params, trial.distributions = {}, {}
    session.flush()


def _trials(session: Session, study_id: int) -> list[Trial]:
    return list(
        session.scalars(select(Trial).where(Trial.study_id == study_id).order_by(Trial.number))
    )


def test_a_failing_criterion_rejects_at_once(db_url: str, study_id: int) -> None:
    with session_scope(db_url) as session:
        (candidate,) = _trials(session, study_id)
        _finish(session, candidate, {"val_accuracy": 0.90, "generalization_gap": 0.01})
        verdict = verdicts.judge(
            session, candidate, {"val_accuracy": 0.90, "generalization_gap": 0.01}
        )
        assert verdict is not None and not verdict.accepted and not verdict.pending
        assert candidate.accepted is False
        assert len(_trials(session, study_id)) == 1  # no stability re-runs for a rejected trial
        failed = [c for c in candidate.verdict["criteria"] if not (c["passed"] or c["pending"])]
        assert [c["metric"] for c in failed] == ["val_accuracy"]


@pytest.mark.parametrize(
    ("rerun_accuracies", "accepted"), [((0.981, 0.979), True), ((0.95, 0.99), False)]
)
def test_stability_reruns_settle_the_candidate(
    db_url: str, study_id: int, rerun_accuracies: tuple[float, float], accepted: bool
) -> None:
    with session_scope(db_url) as session:
        (candidate,) = _trials(session, study_id)
        _finish(session, candidate, GOOD)
        verdict = verdicts.judge(session, candidate, GOOD)
        assert verdict is not None and verdict.pending and candidate.accepted is None
        reruns = [t for t in _trials(session, study_id) if t.origin == "stability"]
        assert len(reruns) == 2  # seeds: 3, the candidate's own run included
        assert {t.system_attrs[verdicts.STABILITY_OF_ATTR] for t in reruns} == {candidate.number}
        assert {t.system_attrs["fixed_params"] == {} for t in reruns} == {True}
        assert len({candidate.seed, *(t.seed for t in reruns)}) == 3

        first, second = reruns
        metrics: dict[str, Any] = {**GOOD, "val_accuracy": rerun_accuracies[0]}
        _finish(session, first, metrics)
        assert verdicts.judge(session, first, metrics) is None  # still one owed
        metrics = {**GOOD, "val_accuracy": rerun_accuracies[1]}
        _finish(session, second, metrics)
        settled = verdicts.judge(session, second, metrics)
        assert settled is not None and settled.accepted is accepted and not settled.pending
        assert candidate.accepted is accepted


def test_a_lost_rerun_replaced_by_its_retry_still_settles(db_url: str, study_id: int) -> None:
    with session_scope(db_url) as session:
        (candidate,) = _trials(session, study_id)
        _finish(session, candidate, GOOD)
        verdicts.judge(session, candidate, GOOD)
        first, second = [t for t in _trials(session, study_id) if t.origin == "stability"]
        _finish(session, first, GOOD)
        verdicts.judge(session, first, GOOD)
        second.state, second.error = "fail", "worker lost"
        retry = Trial(
            study_id=study_id,
            number=99,
            state="running",
            origin="retry",
            retry_of=second.number,
            attempt=2,
            system_attrs=dict(second.system_attrs),
            params={},
            distributions={},
            intermediate_values={},
            user_attrs={},
        )
        session.add(retry)
        session.flush()
        _finish(session, retry, {**GOOD, "val_accuracy": 0.981})
        settled = verdicts.judge(session, retry, {**GOOD, "val_accuracy": 0.981})
        assert settled is not None and settled.accepted
