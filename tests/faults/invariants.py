"""The five invariants every fault scenario ends by checking, each recomputed from the raw rows
rather than read back through the code under test:

(a) every study the API (or the service) acknowledged exists;
(b) every report acknowledged to the objective is stored;
(c) nothing of a finished study is left waiting or running;
(d) one result per trial: no trial number twice in a study, at most one retry of any attempt,
    and a trial that was retried is itself failed;
(e) a study's leaderboard equals its complete trials sorted by value in the study's direction.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuneboard.db import session_scope
from tuneboard.db.models import Study, Trial, TrialMetric
from tuneboard.leaderboard import study_leaderboard
from tuneboard.spec import StudyState, TrialState

__all__ = ["check_invariants"]


def check_invariants(
    db_url: str,
    studies: Iterable[int],
    reports: Mapping[int, Iterable[int]] | None = None,
) -> None:
    """Assert (a)-(e) for ``studies`` (the acknowledged ones) and ``reports`` (trial id: the
    steps acknowledged to its objective)."""
    study_ids = sorted(set(studies))
    with session_scope(db_url) as session:
        stored = {s.id: s for s in session.scalars(select(Study).where(Study.id.in_(study_ids)))}
        missing = [sid for sid in study_ids if sid not in stored]
        assert not missing, f"(a) acknowledged studies missing: {missing}"
        _reports_stored(session, reports or {})
        for study in stored.values():
            trials = list(session.scalars(select(Trial).where(Trial.study_id == study.id)))
            _nothing_left_running(study, trials)
            _one_result_per_trial(study, trials)
            _leaderboard_recomputes(session, study, trials)


def _reports_stored(session: Session, reports: Mapping[int, Iterable[int]]) -> None:
    for trial_id, steps in reports.items():
        have = set(session.scalars(
            select(TrialMetric.step).where(TrialMetric.trial_id == trial_id).distinct()
        ))
        lost = sorted(set(steps) - have)
        assert not lost, f"(b) trial id {trial_id}: acknowledged steps not stored: {lost}"


def _nothing_left_running(study: Study, trials: list[Trial]) -> None:
    if not study.state.is_finished():
        return
    active = [(t.number, t.state) for t in trials if t.state.is_active()]
    assert not active, f"(c) study {study.id} is {study.state} with trials {active}"


def _one_result_per_trial(study: Study, trials: list[Trial]) -> None:
    twice = [n for n, c in Counter(t.number for t in trials).items() if c > 1]
    assert not twice, f"(d) study {study.id}: trial numbers stored twice: {twice}"
    retried = Counter(t.retry_of for t in trials if t.retry_of is not None)
    again = [n for n, c in retried.items() if c > 1]
    assert not again, f"(d) study {study.id}: trials retried more than once: {again}"
    by_number = {t.number: t for t in trials}
    for number in retried:
        lost = by_number.get(number)
        assert lost is not None and lost.state is TrialState.FAIL, (
            f"(d) study {study.id}: trial {number} was retried but is "
            f"{lost.state if lost else 'missing'}"
        )
    assert study.state is not StudyState.COMPLETED or all(
        t.state.is_finished() for t in trials
    ), f"(d) study {study.id} completed with unfinished trials"


def _leaderboard_recomputes(session: Session, study: Study, trials: list[Trial]) -> None:
    sign = -1.0 if study.maximizes else 1.0
    complete = [(sign * t.value, t.number) for t in trials if t.state is TrialState.COMPLETE
                and t.value is not None and not math.isnan(t.value)]
    expected = [number for _, number in sorted(complete)]
    ranked = study_leaderboard(session, study, limit=len(trials) + 1)
    assert [r.trial.number for r in ranked] == expected, (
        f"(e) study {study.id}: leaderboard {[r.trial.number for r in ranked]} != {expected}"
    )
    assert [r.rank for r in ranked] == list(range(1, len(ranked) + 1))
