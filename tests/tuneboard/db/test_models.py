from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from tuneboard.db import session_scope
from tuneboard.db.models import Study
from tuneboard.spec import EXAMPLE_SPEC, Direction, StudySpec


def _study(**fields: object) -> Study:
    return Study(
        name="s", optuna_name=f"s-{uuid.uuid4().hex}", user_attrs={}, system_attrs={}, **fields
    )


def test_spec_model_is_the_validated_spec_kept_per_row(db_url: str) -> None:
    spec = StudySpec.model_validate(EXAMPLE_SPEC).model_dump(mode="json")
    with session_scope(db_url) as session:
        session.add(_study(directions=["maximize"], spec=spec))
    with session_scope(db_url) as session:
        study = session.scalars(select(Study)).one()
        model = study.spec_model
        assert isinstance(model, StudySpec)
        assert model.budget.max_parallel == EXAMPLE_SPEC["budget"]["max_parallel"]
        assert study.spec_model is model
        study.spec = {**spec, "budget": {"n_trials": 3}}
        assert study.spec_model is not model
        assert study.spec_model is not None and study.spec_model.budget.max_failed == 10
        # Loaded as the enum, so a direction is compared as one, never as free text.
        assert study.directions == [Direction.MAXIMIZE]
        assert type(study.directions[0]) is Direction and study.maximizes


def test_the_validated_spec_is_kept_across_reads_of_the_row_by_its_document(
    db_url: str,
) -> None:
    spec = StudySpec.model_validate(EXAMPLE_SPEC).model_dump(mode="json")
    with session_scope(db_url) as session:
        session.add(_study(directions=["maximize"], spec=spec))
    with session_scope(db_url) as session:
        first = session.scalars(select(Study)).one().spec_model
    with session_scope(db_url) as session:
        study = session.scalars(select(Study)).one()
        assert study.spec_model is first  # another read of the row: not validated again
        study.spec = {**spec, "budget": {"n_trials": 3}}
        changed = study.spec_model
    assert changed is not first and changed is not None and changed.budget.n_trials == 3
    with session_scope(db_url) as session:
        assert session.scalars(select(Study)).one().spec_model is changed  # as committed


def test_a_study_without_spec_has_no_spec_model(db_url: str) -> None:
    with session_scope(db_url) as session:
        session.add(_study(directions=["minimize", "maximize"]))
    with session_scope(db_url) as session:
        study = session.scalars(select(Study)).one()
        assert study.spec_model is None
        assert study.directions == [Direction.MINIMIZE, Direction.MAXIMIZE]
        assert not study.maximizes


def test_an_unknown_direction_is_refused(db_url: str) -> None:
    with pytest.raises(StatementError, match="max"), session_scope(db_url) as session:
        session.add(_study(directions=["max"]))
