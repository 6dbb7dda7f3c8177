"""What the API takes and returns for notes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tuneboard.db.models import NOTE_MAX_LENGTH, Note
from tuneboard.schemas import UtcDatetime, View


class NoteCreate(BaseModel):
    """Body of POST .../notes."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"body": "lr above 0.01 diverges; keep it lower"}]},
    )

    body: str = Field(
        min_length=1, max_length=NOTE_MAX_LENGTH, description="The note, as plain text."
    )

    @field_validator("body")
    @classmethod
    def _text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("not valid Unicode: it holds a lone surrogate") from None
        # PostgreSQL text cannot hold NUL, and no one means to write one.
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class NoteOut(View):
    id: int
    study_id: int
    trial_number: int | None = Field(
        None, description="The trial the note is about; null for a note on the study."
    )
    author: str = Field(description='The key that wrote it, as the audit log names it ("key:4").')
    body: str
    created_at: UtcDatetime

    @classmethod
    def of(cls, note: Note, trial_number: int | None) -> NoteOut:
        return cls(id=note.id, study_id=note.study_id, trial_number=trial_number,
                   author=note.author, body=note.body, created_at=note.created_at)
