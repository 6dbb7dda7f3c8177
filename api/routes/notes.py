"""Notes on a study and on its trials: viewers read them, members add them (audited)."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import API_PREFIX, Member, SessionDep, StudyDep, TrialNumber
from api.openapi import ERRORS
from api.pagination import CursorKey, Limit, page
from tuneboard import notes
from tuneboard.db.models import Note
from tuneboard.notes import NoteCreate, NoteOut
from tuneboard.schemas import Page

router = APIRouter(prefix=f"{API_PREFIX}/studies/{{study_id}}", tags=["notes"], responses=ERRORS)


def _page(rows: list[tuple[Note, int | None]], limit: int) -> Page[NoteOut]:
    items, next_cursor = page(rows, limit, lambda row: (row[0].id,))
    return Page[NoteOut](items=[NoteOut.of(n, t) for n, t in items], next_cursor=next_cursor)


@router.get(
    "/notes",
    summary="A study's notes, newest first",
    description="Notes on the study and on each of its trials (`trial_number` says which; null "
    "for a note on the study itself).",
)
def list_study_notes(
    session: SessionDep, study: StudyDep, limit: Limit, before: CursorKey
) -> Page[NoteOut]:
    rows = notes.list_notes(session, study, limit=limit + 1, before_id=before)
    return _page(rows, limit)


@router.post("/notes", status_code=status.HTTP_201_CREATED, summary="Add a note to a study")
def add_study_note(
    session: SessionDep, principal: Member, study: StudyDep, body: NoteCreate
) -> NoteOut:
    return NoteOut.of(*notes.add_note(session, principal, study, body.body))


@router.get("/trials/{number}/notes", summary="A trial's notes, newest first")
def list_trial_notes(
    session: SessionDep, study: StudyDep, number: TrialNumber, limit: Limit, before: CursorKey
) -> Page[NoteOut]:
    rows = notes.list_notes(session, study, limit=limit + 1, trial_number=number,
                            before_id=before)
    return _page(rows, limit)


@router.post(
    "/trials/{number}/notes", status_code=status.HTTP_201_CREATED, summary="Add a note to a trial"
)
def add_trial_note(
    session: SessionDep, principal: Member, study: StudyDep, number: TrialNumber, body: NoteCreate
) -> NoteOut:
    return NoteOut.of(*notes.add_note(session, principal, study, body.body, trial_number=number))
