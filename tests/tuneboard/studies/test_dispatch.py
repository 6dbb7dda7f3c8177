"""The dispatcher's per-team cap: a team never has more trials waiting or running than
``TUNEBOARD_MAX_RUNNING_TRIALS_PER_TEAM`` over all its studies; the rest of its studies wait,
and are dispatched once a slot frees."""

from __future__ import annotations

import uuid

import pytest

from tests.workers.conftest import (  # noqa: F401  (fixtures)
    Stack,
    Studies,
    client_env,
    local,
    steps_spec,
    studies,
)
from tuneboard.config import get_settings
from tuneboard.db import session_scope
from tuneboard.spec import StudyState, TrialState
from tuneboard.teams import service as teams
from workers import reaper, runner


def _active(of: Studies, *study_ids: int) -> list[int]:
    return [t.id for sid in study_ids for t in of.trials(sid) if t.state.is_active()]


def _other_team(db_url: str) -> Studies:
    with session_scope(db_url) as session:
        _, raw = teams.create_team(session, f"team-{uuid.uuid4().hex[:8]}")
        return Studies(db_url=db_url, principal=teams.authenticate(session, raw))


def test_a_team_at_its_cap_waits_for_a_slot(
    local: Stack, studies: Studies, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    monkeypatch.setenv("TUNEBOARD_MAX_RUNNING_TRIALS_PER_TEAM", "1")
    get_settings.cache_clear()
    a = studies.create(steps_spec("a", n_trials=2, max_parallel=2))
    b = studies.create(steps_spec("b", n_trials=2, max_parallel=2))
    assert len(_active(studies, a)) == 1  # max_parallel alone would allow 2
    assert studies.trials(b) == []
    # Another team's studies are not held back by this one's.
    other = _other_team(local.db_url)
    c = other.create(steps_spec("c", n_trials=2, max_parallel=2))
    assert len(_active(other, c)) == 1

    ran = 0
    while not all(studies.study(sid).state.is_finished() for sid in (a, b)):
        active = _active(studies, a, b)
        assert len(active) <= 1, f"the team has {len(active)} trials active, its cap is 1"
        if active:
            done = runner.run_trial(active[0], worker="test", settings=get_settings())
            assert done is not None and done.state is TrialState.COMPLETE
            ran += 1
        else:  # b has no active trial: only the reaper's idle-study pass dispatches it
            reaper.dispatch_idle_studies(get_settings(), reaper.ReapReport())
        assert ran <= 4, "more trials ran than the two studies' budgets"
    assert ran == 4
    for sid in (a, b):
        assert studies.study(sid).state is StudyState.COMPLETED
        assert [t.state for t in studies.trials(sid)] == [TrialState.COMPLETE] * 2
