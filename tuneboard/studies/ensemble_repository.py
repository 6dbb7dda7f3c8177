"""Every query of the ensembles: their members, their records and their state changes."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tuneboard.db.models import Ensemble, EnsembleState, Study, Trial
from tuneboard.db.queries import ranked_trials

__all__ = [
    "finish_ensemble",
    "get_ensemble",
    "latest_ensemble",
    "start_ensemble",
    "top_checkpointed_trials",
    "trials_by_number",
]


def top_checkpointed_trials(
    session: Session, study: Study, k: int, *, accepted_only: bool = False
) -> list[Trial]:
    """The study's ``k`` best complete trials that have a checkpoint location, best first;
    with ``accepted_only``, only those its standard accepted."""
    stmt = ranked_trials(study.id, maximize=study.maximizes, accepted_only=accepted_only).where(
        Trial.checkpoint_path.is_not(None)
    )
    return list(session.scalars(stmt.limit(k)))


def trials_by_number(session: Session, study_id: int, numbers: list[int]) -> list[Trial]:
    """The study's trials numbered ``numbers``, in that order (missing ones left out)."""
    rows = session.scalars(
        select(Trial).where(Trial.study_id == study_id, Trial.number.in_(numbers))
    )
    by_number = {trial.number: trial for trial in rows}
    return [by_number[n] for n in numbers if n in by_number]


def latest_ensemble(session: Session, study_id: int) -> Ensemble | None:
    return session.scalars(
        select(Ensemble).where(Ensemble.study_id == study_id).order_by(Ensemble.id.desc())
        .limit(1)
    ).first()


def get_ensemble(session: Session, ensemble_id: int) -> Ensemble | None:
    return session.get(Ensemble, ensemble_id)


def start_ensemble(session: Session, ensemble_id: int) -> bool:
    """Mark an unfinished ensemble running; False when it is finished (or gone). A running one
    is taken again: its worker may have died, and evaluating twice gives the same result."""
    unfinished = (EnsembleState.PENDING, EnsembleState.RUNNING)
    done = session.execute(
        update(Ensemble)
        .where(Ensemble.id == ensemble_id, Ensemble.state.in_(unfinished))
        .values(state=EnsembleState.RUNNING)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def finish_ensemble(session: Session, ensemble_id: int, **values: object) -> None:
    """Record the outcome (``state`` and the result or ``error``) of an unfinished ensemble."""
    unfinished = (EnsembleState.PENDING, EnsembleState.RUNNING)
    session.execute(
        update(Ensemble)
        .where(Ensemble.id == ensemble_id, Ensemble.state.in_(unfinished))
        .values(**values)
    )
