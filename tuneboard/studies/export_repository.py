"""The query behind a study's trial export (``tuneboard.studies.export``)."""

from __future__ import annotations

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from tuneboard.db.models import Trial, TrialMetric


def final_metrics(session: Session, study_id: int) -> dict[int, dict[str, float | None]]:
    """Each trial's last reported value of every per-epoch metric: {trial number: {name: value}}.

    "Last" is the value at the highest step the trial reported that metric at; trials that
    reported nothing are absent.
    """
    last = (
        select(TrialMetric.trial_id, TrialMetric.name, func.max(TrialMetric.step).label("step"))
        .join(Trial, Trial.id == TrialMetric.trial_id)
        .where(Trial.study_id == study_id)
        .group_by(TrialMetric.trial_id, TrialMetric.name)
        .subquery()
    )
    rows = session.execute(
        select(Trial.number, TrialMetric.name, TrialMetric.value)
        .join(
            last,
            and_(
                TrialMetric.trial_id == last.c.trial_id,
                TrialMetric.name == last.c.name,
                TrialMetric.step == last.c.step,
            ),
        )
        .join(Trial, Trial.id == TrialMetric.trial_id)
    )
    found: dict[int, dict[str, float | None]] = {}
    for number, name, value in rows:
        found.setdefault(number, {})[name] = value
    return found
