"""Notes use cases. They flush and never commit: the request commits."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tuneboard import audit
from tuneboard.db.models import Note, Study
from tuneboard.notes import repository as repo
from tuneboard.studies import service as studies
from tuneboard.teams import Principal


def add_note(
    session: Session,
    principal: Principal,
    study: Study,
    body: str,
    *,
    trial_number: int | None = None,
) -> tuple[Note, int | None]:
    """A note on ``study`` (the caller's team's), or on its trial ``trial_number``; audited."""
    trial_id = None
    if trial_number is not None:
        trial_id = studies.get_trial(session, study, trial_number).id
    note = Note(team_id=principal.team_id, study_id=study.id, trial_id=trial_id,
                author=principal.actor, body=body)
    session.add(note)
    session.flush()
    audit.record(session, team_id=principal.team_id, actor=principal.actor,
                 action="note.create", object_type="note", object_id=note.id,
                 details={"study_id": study.id, "trial_number": trial_number})
    return note, trial_number


def list_notes(
    session: Session,
    study: Study,
    *,
    limit: int,
    trial_number: int | None = None,
    before_id: int | None = None,
) -> list[tuple[Note, int | None]]:
    """The study's notes, on it and on its trials, newest first; only those on one trial when
    ``trial_number`` is given (404 if the study has no such trial)."""
    trial_id = None
    if trial_number is not None:
        trial_id = studies.get_trial(session, study, trial_number).id
    return repo.list_notes(session, study.id, limit=limit, trial_id=trial_id, before_id=before_id)
