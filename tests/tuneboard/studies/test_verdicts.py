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


def _study(db_url: str, objective: dict[str, Any], acceptance: list[dict[str, Any]]) -> int:
    with session_scope(db_url) as session:
        _, key = create_team(session, "team-b")
        principal = authenticate(session, key)
        standards.create_standard(session, principal, baseline(acceptance=acceptance))
        study, _ = service.create_study(session, principal, {
            **GOOD_SPEC, "objective": {**GOOD_SPEC["objective"], **objective},
            "budget": {"n_trials": 1, "max_parallel": 1},
        })
        return study.id


def _candidate(session: Session, study_id: int, number: int) -> Trial:
    trial = Trial(study_id=study_id, number=number, state="running", origin="sampler",
                  attempt=1, seed=number, system_attrs={}, params={}, distributions={},
                  intermediate_values={}, user_attrs={})
    session.add(trial)
    session.flush()
    return trial


def _judge_value(session: Session, trial: Trial, metric: str, value: float) -> Any:
    metrics = {**GOOD, metric: value}
    _finish(session, trial, metrics)
    trial.value, trial.values = value, [value]
    session.flush()
    return verdicts.judge(session, trial, metrics)


def _reruns_of(session: Session, study_id: int, number: int) -> list[Trial]:
    return [t for t in _trials(session, study_id)
            if (t.system_attrs or {}).get(verdicts.STABILITY_OF_ATTR) == number]


@pytest.mark.parametrize(
    ("metric", "direction", "best", "worse", "better"),
    [("val_accuracy", "maximize", 0.98, 0.975, 0.99),
     ("val_loss", "minimize", 0.2, 0.3, 0.1)],
)
def test_reruns_go_only_to_candidates_that_could_change_the_best_accepted(
    db_url: str, metric: str, direction: str, best: float, worse: float, better: float
) -> None:
    stability = {"stability": {"metric": metric, "seeds": 2, "max_std": 1.0}}
    study_id = _study(db_url, {"metric": metric, "direction": direction},
                      [{"metric": "generalization_gap", "op": "<=", "value": 0.03}, stability])
    with session_scope(db_url) as session:
        (first,) = _trials(session, study_id)
        # No accepted trial yet: the first candidate gets its re-run, whatever its value.
        assert _judge_value(session, first, metric, best).pending
        (rerun,) = _reruns_of(session, study_id, first.number)
        assert rerun.origin == "stability"
        assert _judge_value(session, rerun, metric, best).accepted
        assert first.accepted is True

        # Worse than the best accepted, or as good but later: rejected at once, no re-runs.
        for number, value in ((10, worse), (11, best)):
            late = _candidate(session, study_id, number)
            verdict = _judge_value(session, late, metric, value)
            reason = f"not re-run: cannot beat best accepted {best:g} (trial {first.number})"
            assert verdict is not None and not verdict.accepted and not verdict.pending
            assert late.accepted is False and late.verdict["note"] == reason
            unmet = [c for c in late.verdict["criteria"] if c["kind"] == "stability"]
            assert [(c["passed"], c["pending"], c["detail"]) for c in unmet] == [
                (False, False, reason)]
            assert _reruns_of(session, study_id, number) == []

        # Better than the best accepted: it could change the best, so it is re-run.
        contender = _candidate(session, study_id, 12)
        assert _judge_value(session, contender, metric, better).pending
        assert contender.accepted is None
        assert [t.origin for t in _reruns_of(session, study_id, 12)] == ["stability"]


def test_a_mean_criterion_settles_with_its_interval_in_the_stored_verdict(db_url: str) -> None:
    study_id = _study(db_url, {}, [{"stability": {
        "metric": "val_accuracy", "seeds": 3, "min_mean": 0.97, "confidence": 0.95}}])
    with session_scope(db_url) as session:
        (candidate,) = _trials(session, study_id)
        assert _judge_value(session, candidate, "val_accuracy", 0.98).pending
        first, second = _reruns_of(session, study_id, candidate.number)
        assert _judge_value(session, first, "val_accuracy", 0.981) is None
        settled = _judge_value(session, second, "val_accuracy", 0.979)
        assert settled is not None and settled.accepted and candidate.accepted is True
        (mean,) = candidate.verdict["criteria"]
        assert (mean["op"], mean["n"], mean["confidence"], mean["test"]) == (
            "mean>=", 3, 0.95, "t")
        low, high = mean["interval"]
        assert 0.97 < low < 0.98 and high is None
        assert mean["observed"] == pytest.approx(0.98)
