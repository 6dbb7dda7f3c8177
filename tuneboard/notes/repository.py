"""Every query on notes."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tuneboard.db.models import Note, Trial


def list_notes(
    session: Session,
    study_id: int,
    *,
    limit: int,
    trial_id: int | None = None,
    before_id: int | None = None,
) -> list[tuple[Note, int | None]]:
    """A study's notes (those on one trial when ``trial_id`` is given), newest first, each with
    the number of the trial it is about (None for a note on the study); ``before_id`` is the
    cursor."""
    stmt = (
        select(Note, Trial.number)
        .outerjoin(Trial, Trial.id == Note.trial_id)
        .where(Note.study_id == study_id)
    )
    if trial_id is not None:
        stmt = stmt.where(Note.trial_id == trial_id)
    if before_id is not None:
        stmt = stmt.where(Note.id < before_id)
    rows = session.execute(stmt.order_by(Note.id.desc()).limit(limit))
    return [(row[0], row[1]) for row in rows]
