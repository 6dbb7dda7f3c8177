"""Why a running trial stops: the order of the reasons, and which ones abort the step."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tuneboard.spec import StudyState, TrialState
from workers.stopping import StopReason, stop_for

NOW = datetime(2024, 1, 1, 12, 0, 0)
STARTED = NOW - timedelta(seconds=30)


def test_a_running_trial_of_an_active_study_within_its_time_goes_on() -> None:
    for study in (StudyState.QUEUED, StudyState.RUNNING):
        assert stop_for((TrialState.RUNNING, study, STARTED), 60.0, NOW) is None
    assert stop_for((TrialState.RUNNING, StudyState.RUNNING, None), 1.0, NOW) is None
    assert stop_for((TrialState.RUNNING, StudyState.RUNNING, STARTED), None, NOW) is None


@pytest.mark.parametrize(
    ("progress", "reason", "message"),
    [
        (None, StopReason.TRIAL_DELETED, "trial deleted"),
        # A cancel wins over everything the trial's own row says.
        ((TrialState.FAIL, StudyState.CANCELLED, STARTED), StopReason.STUDY_CANCELLED,
         "study cancelled"),
        ((TrialState.RUNNING, StudyState.CANCELLING, STARTED), StopReason.STUDY_CANCELLED,
         "study cancelled"),
        ((TrialState.FAIL, StudyState.RUNNING, STARTED), StopReason.TRIAL_GIVEN_UP,
         "trial is fail: the reaper gave it up"),
        ((TrialState.FAIL, StudyState.COMPLETED, STARTED), StopReason.TRIAL_GIVEN_UP,
         "trial is fail: the reaper gave it up"),
        ((TrialState.RUNNING, StudyState.FAILED, STARTED), StopReason.STUDY_FINISHED,
         "study failed"),
        ((TrialState.RUNNING, StudyState.RUNNING, STARTED), StopReason.TIMED_OUT,
         "budget.timeout_s reached"),
    ],
)
def test_each_reason_in_its_order(
    progress: tuple[TrialState, StudyState, datetime | None] | None,
    reason: StopReason,
    message: str,
) -> None:
    stop = stop_for(progress, 30.0, NOW)
    assert stop is not None
    assert (stop.reason, stop.message) == (reason, message)


def test_only_a_timeout_lets_the_step_finish() -> None:
    assert [r for r in StopReason if not r.aborts] == [StopReason.TIMED_OUT]
