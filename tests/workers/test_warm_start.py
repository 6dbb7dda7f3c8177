"""What a standard contributes to the search, on the worker path: warm-start trials created
once however many workers run, and the acceptance criteria as sampler constraints."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.workers.conftest import Stack, Studies, steps_spec
from tests.workers.test_runner import run_waiting
from tuneboard.db import session_scope
from tuneboard.errors import InvalidInput
from tuneboard.optimization import make_sampler
from tuneboard.optimization.constraints import CONSTRAINTS_ATTR, MISSING_VIOLATION
from tuneboard.optimization.params import external_params
from tuneboard.optimization.storage import SqlStorage
from tuneboard.spec import StudySpec, TrialState
from tuneboard.spec.states import TrialOrigin
from tuneboard.standards import StandardDocument
from tuneboard.standards import service as standards

CRITERIA = [
    {"metric": "loss", "op": "<=", "value": 1.5},
    {"metric": "resumed_at", "op": ">=", "value": 1.0},
    {"metric": "never_reported", "op": ">=", "value": 0.0},
]


def _standard(stack: Stack, studies: Studies, name: str, acceptance: list[dict]) -> None:
    with session_scope(stack.db_url) as session:
        standards.create_standard(session, studies.principal, StandardDocument.model_validate(
            {"name": name, "rules": [], "acceptance": acceptance}))


def test_the_criteria_become_constraints_stored_on_each_trial_and_read_by_the_sampler(
    local: Stack, studies: Studies
) -> None:
    _standard(local, studies, "strict", CRITERIA[:2])
    sid = studies.create({**steps_spec(n_trials=4, sampler="tpe"), "standard": "strict",
                          "search": {"prefer_accepted": True}})
    assert run_waiting(studies, sid) == [TrialState.COMPLETE] * 4
    spec = studies.study(sid).spec_model
    assert spec is not None and spec.search is not None
    assert [b.model_dump() for b in spec.search.constraints] == CRITERIA[:2]
    sampler = make_sampler(spec.sampler, spec.search_space, n_objectives=1, search=spec.search)
    read = sampler._constraints_func  # type: ignore[attr-defined]
    storage = SqlStorage(local.db_url)
    for row in studies.trials(sid):
        frozen = storage.get_trial(row.id)
        stored = frozen.system_attrs[CONSTRAINTS_ATTR]
        assert stored == pytest.approx([row.value - 1.5, 1.0 - 1.0])  # type: ignore[operator]
        assert list(read(frozen)) == pytest.approx(stored)
        assert (stored[0] <= 0) == row.accepted


def test_a_criterion_the_trial_never_reports_is_a_violation(
    local: Stack, studies: Studies
) -> None:
    _standard(local, studies, "odd", CRITERIA)
    sid = studies.create({**steps_spec(n_trials=1, sampler="nsga2"), "standard": "odd",
                          "search": {"prefer_accepted": True}})
    assert run_waiting(studies, sid) == [TrialState.COMPLETE]
    (row,) = studies.trials(sid)
    assert SqlStorage(local.db_url).get_trial(row.id).system_attrs[CONSTRAINTS_ATTR][2] == (
        MISSING_VIOLATION)


def test_prefer_accepted_needs_metric_criteria(local: Stack, studies: Studies) -> None:
    _standard(local, studies, "stable-only",
              [{"stability": {"metric": "loss", "seeds": 2, "max_std": 0.1}}])
    with pytest.raises(InvalidInput) as caught:
        studies.create({**steps_spec(sampler="tpe"), "standard": "stable-only",
                        "search": {"prefer_accepted": True}})
    assert [d["field"] for d in caught.value.details] == ["search.prefer_accepted"]


@pytest.fixture
def stack(shared_stack: Stack, client_env: Callable[[Stack], None]) -> Stack:
    client_env(shared_stack)
    return shared_stack


def test_two_workers_run_a_warm_start_of_three_exactly_once(
    stack: Stack, studies: Studies
) -> None:
    _standard(stack, studies, "steps-ok", [{"metric": "loss", "op": "<=", "value": 100.0}])
    source = studies.create({**steps_spec("source", n_trials=4, max_parallel=2),
                             "standard": "steps-ok"})
    assert studies.wait_finished(source, stack).state == "completed"
    best = sorted((t for t in studies.trials(source) if t.accepted), key=lambda t: t.value)[:3]
    assert len(best) == 3
    target = studies.create({
        **steps_spec("target", n_trials=6, max_parallel=3, sleep_s=0.05),
        "standard": "steps-ok",
        "warm_start": {"from_studies": [source], "top_k": 3, "promoted": False},
    })
    assert studies.wait_finished(target, stack).state == "completed"
    trials = studies.trials(target)
    assert [t.origin for t in trials] == [TrialOrigin.WARM_START] * 3 + [TrialOrigin.SAMPLER] * 3
    assert {t.worker.split("@")[0] for t in trials if t.worker} <= {"w1", "w2"}
    assert [external_params(t.params, t.distributions)["x"] for t in trials[:3]] == [
        external_params(t.params, t.distributions)["x"] for t in best]
    spec = StudySpec.model_validate(studies.study(target).spec)
    assert spec.warm_start is not None and spec.warm_start.top_k == 3
