"""Notes: what people write about a study or one of its trials, kept in our store.

A note is only ever added (never edited or deleted), by a member of the study's team, and each
one is recorded in the audit log in the same transaction. Another team's study is not found.
"""

from tuneboard.notes.schemas import NoteCreate, NoteOut
from tuneboard.notes.service import add_note, list_notes

__all__ = ["NoteCreate", "NoteOut", "add_note", "list_notes"]
