from __future__ import annotations

import copy
from typing import Any

import pytest
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)
from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from tests.tuneboard.standards.support import BASELINE, baseline, spec
from tuneboard import standards
from tuneboard.db import session_scope
from tuneboard.db.models import AuditEntry, StandardVersion, Study, Trial
from tuneboard.errors import Conflict, InvalidInput, NotFound, StandardViolation
from tuneboard.standards import ImmutableVersionError, StandardDocument, StandardVersionOut
from tuneboard.teams.service import Principal, authenticate, create_team


@pytest.fixture
def principals(db_url: str) -> tuple[Principal, Principal]:
    with session_scope(db_url) as session:
        _, key_a = create_team(session, "team-a")
        _, key_b = create_team(session, "team-b")
        return authenticate(session, key_a), authenticate(session, key_b)


@pytest.fixture
def a(principals: tuple[Principal, Principal]) -> Principal:
    return principals[0]


@pytest.fixture
def b(principals: tuple[Principal, Principal]) -> Principal:
    return principals[1]


def _doc(**changes: Any) -> StandardDocument:
    return baseline(**changes)


def _raw_document(session: Session, version_id: int) -> str:
    return session.scalar(
        select(cast(StandardVersion.document, Text)).where(StandardVersion.id == version_id)
    ) or ""


def _audit(session: Session, team_id: int) -> list[AuditEntry]:
    return list(session.scalars(
        select(AuditEntry)
        .where(AuditEntry.team_id == team_id, AuditEntry.action.like("standard.%"))
        .order_by(AuditEntry.id)
    ))


def test_create_and_publish_keep_old_versions_byte_identical(db_url: str, a: Principal) -> None:
    with session_scope(db_url) as session:
        v1 = standards.create_standard(session, a, _doc(), "first cut")
        assert (v1.version, v1.status, v1.author) == (1, "active", a.actor)
        assert v1.changelog == "first cut"
        v1_id = v1.id
    with session_scope(db_url) as session:
        before = _raw_document(session, v1_id)
        tighter = copy.deepcopy(BASELINE["rules"])
        tighter[1]["range"]["high"] = 3e-3
        v2 = standards.publish_version(
            session, a, "vision-baseline", _doc(rules=tighter), "tighter lr"
        )
        assert v2.version == 2
    with session_scope(db_url) as session:
        assert _raw_document(session, v1_id) == before
        out = StandardVersionOut.of(standards.get_version(session, a.team_id,
                                                          "vision-baseline", 1))
        assert out.document == _doc() and out.name == "vision-baseline"
        assert standards.get_standard(session, a.team_id, "vision-baseline").version == 2
        entries = _audit(session, a.team_id)
        assert [(e.action, e.actor, e.object_id) for e in entries] == [
            ("standard.create", a.actor, "vision-baseline@1"),
            ("standard.publish", a.actor, "vision-baseline@2"),
        ]
        assert entries[1].details["changes"]["rules_changed"] == ["lr"]
        assert entries[1].details["changelog"] == "tighter lr"


def test_a_published_version_cannot_be_rewritten(db_url: str, a: Principal) -> None:
    with pytest.raises(ImmutableVersionError), session_scope(db_url) as session:
        v1 = standards.create_standard(session, a, _doc())
        session.flush()
        v1.document = {**v1.document, "description": "edited"}
        session.flush()


def test_create_publish_conflicts_and_mistakes(db_url: str, a: Principal, b: Principal) -> None:
    with session_scope(db_url) as session:
        standards.create_standard(session, a, _doc())
        with pytest.raises(Conflict):
            standards.create_standard(session, a, _doc())
        standards.create_standard(session, b, _doc())
        with pytest.raises(InvalidInput):
            standards.publish_version(session, a, "other-name", _doc())
        with pytest.raises(NotFound):
            standards.publish_version(session, a, "nope", _doc(name="nope"))


def test_resolve_name_pinned_and_deprecated(db_url: str, a: Principal) -> None:
    with session_scope(db_url) as session:
        standards.create_standard(session, a, _doc())
        standards.publish_version(session, a, "vision-baseline", _doc(description="v2"))
        assert standards.resolve(session, a.team_id, "vision-baseline").version == 2
        assert standards.resolve(session, a.team_id, "vision-baseline@1").version == 1
        standards.deprecate_version(session, a, "vision-baseline", 2)
        standards.deprecate_version(session, a, "vision-baseline", 2)
        assert standards.resolve(session, a.team_id, "vision-baseline").version == 1
        pinned = standards.resolve(session, a.team_id, "vision-baseline@2")
        assert (pinned.version, pinned.status) == (2, "deprecated")
        report = standards.check(session, a.team_id, "vision-baseline@2", spec())
        assert report.status == "deprecated" and "deprecated" in report.warnings[0]
        with pytest.raises(NotFound):
            standards.resolve(session, a.team_id, "vision-baseline@3")
        with pytest.raises(InvalidInput):
            standards.resolve(session, a.team_id, "vision-baseline@x")
        standards.deprecate_version(session, a, "vision-baseline", 1)
        with pytest.raises(NotFound, match="no active version"):
            standards.resolve(session, a.team_id, "vision-baseline")
        assert [e.action for e in _audit(session, a.team_id)].count("standard.deprecate") == 2


def test_check_reports_violations_defaults_and_override(db_url: str, a: Principal) -> None:
    bad_space = {**spec()["search_space"],
                 "optimizer": {"type": "categorical", "choices": ["adam", "rmsprop"]}}
    with session_scope(db_url) as session:
        standards.create_standard(session, a, _doc())
        good = standards.check(session, a.team_id, "vision-baseline", spec())
        assert good.ok and good.admissible and good.standard == "vision-baseline@1"
        assert good.defaults_applied == ["pruner", "early_stopping", "budget.max_retries"]

        bad = standards.check(session, a.team_id, "vision-baseline", spec(search_space=bad_space))
        assert not bad.ok and not bad.admissible and bad.override is None
        [v] = bad.violations
        assert v.rule == "optimizer" and v.found == ["rmsprop"] and v.rationale

        with pytest.raises(StandardViolation) as info:
            standards.admit(session, a.team_id, spec(search_space=bad_space))
        assert info.value.status_code == 422
        assert info.value.details["violations"][0]["rule"] == "optimizer"
        assert "optimizer" in info.value.message

        overridden = spec(search_space=bad_space, override={"reason": "rmsprop ablation"})
        applied = standards.admit(session, a.team_id, overridden)
        assert applied is not None
        assert not applied.report.ok and applied.report.admissible
        assert applied.report.override == "rmsprop ablation"
        assert applied.version.version == 1
        assert applied.spec["pruner"] == {"type": "hyperband"}
        assert "pruner" not in overridden

        assert standards.admit(session, a.team_id, {"name": "no-standard"}) is None
        with pytest.raises(InvalidInput) as missing:
            standards.admit(session, a.team_id, spec(standard="nope"))
        assert missing.value.details[0]["field"] == "standard"


def test_diff_over_three_versions(db_url: str, a: Principal) -> None:
    rules_v3 = [*BASELINE["rules"], {"param": "dropout", "range": {"low": 0.0, "high": 0.5}}]
    with session_scope(db_url) as session:
        standards.create_standard(session, a, _doc())
        standards.publish_version(session, a, "vision-baseline", _doc(description="v2"))
        standards.publish_version(session, a, "vision-baseline",
                                  _doc(description="v2", rules=rules_v3), "dropout rule")
        d12 = standards.diff(session, a.team_id, "vision-baseline", 1, 2)
        assert d12.description is not None and d12.description.after == "v2"
        assert not d12.rules.added
        d23 = standards.diff(session, a.team_id, "vision-baseline", 2, 3)
        assert d23.description is None and [r.param for r in d23.rules.added] == ["dropout"]
        d31 = standards.diff(session, a.team_id, "vision-baseline", 3, 1)
        assert [r.param for r in d31.rules.removed] == ["dropout"]
        assert (d31.from_version, d31.to_version) == (3, 1)
        assert standards.diff(session, a.team_id, "vision-baseline", 2, 2).empty
        with pytest.raises(NotFound):
            standards.diff(session, a.team_id, "vision-baseline", 1, 4)


def test_lists_paginate_by_cursor(db_url: str, a: Principal, b: Principal) -> None:
    with session_scope(db_url) as session:
        for name in ("s1", "s2", "s3"):
            standards.create_standard(session, a, _doc(name=name))
        standards.publish_version(session, a, "s2", _doc(name="s2", description="new"))
        standards.create_standard(session, b, _doc(name="s4"))
        first = standards.list_standards(session, a.team_id, limit=2)
        assert [(v.standard.name, v.version) for v in first] == [("s1", 1), ("s2", 2)]
        rest = standards.list_standards(
            session, a.team_id, limit=2, after_standard_id=first[-1].standard_id
        )
        assert [v.standard.name for v in rest] == ["s3"]
        versions = standards.list_versions(session, a.team_id, "s2", limit=1)
        assert [v.version for v in versions] == [1]
        versions = standards.list_versions(session, a.team_id, "s2", limit=5, after_version=1)
        assert [v.version for v in versions] == [2]
        with pytest.raises(NotFound):
            standards.list_versions(session, b.team_id, "s2", limit=5)


def test_another_teams_standard_is_not_found(db_url: str, a: Principal, b: Principal) -> None:
    with session_scope(db_url) as session:
        standards.create_standard(session, a, _doc())
        for call in (
            lambda: standards.resolve(session, b.team_id, "vision-baseline"),
            lambda: standards.resolve(session, b.team_id, "vision-baseline@1"),
            lambda: standards.get_standard(session, b.team_id, "vision-baseline"),
            lambda: standards.check(session, b.team_id, "vision-baseline", spec()),
            lambda: standards.publish_version(session, b, "vision-baseline", _doc()),
            lambda: standards.deprecate_version(session, b, "vision-baseline", 1),
            lambda: standards.diff(session, b.team_id, "vision-baseline", 1, 1),
        ):
            with pytest.raises(NotFound):
                call()
        assert standards.list_standards(session, b.team_id, limit=5) == []


def _study(session: Session, principal: Principal, version: StandardVersion, **kw: Any) -> Study:
    study = Study(team_id=principal.team_id, name="digits-mlp", optuna_name=f"s-{version.id}",
                  directions=["maximize"], spec=spec(fixed={"weight_decay": 0.0}),
                  standard_version_id=version.id, **kw)
    session.add(study)
    session.flush()
    session.refresh(study)
    return study


def _trial(session: Session, study: Study, number: int, value: float, *, accepted: bool | None,
           lr: float = 3e-3, state: str = "complete") -> Trial:
    dists = {
        "lr": FloatDistribution(1e-4, 1e-2, log=True),
        "optimizer": CategoricalDistribution(["sgd", "adam"]),
        "batch_size": IntDistribution(16, 256, log=True),
    }
    trial = Trial(study_id=study.id, number=number, state=state, value=value,
                  params={"lr": lr, "optimizer": 0, "batch_size": 64.0},
                  distributions={k: distribution_to_json(d) for k, d in dists.items()},
                  accepted=accepted)
    session.add(trial)
    session.flush()
    return trial


def test_promote_best_accepted_trial(db_url: str, a: Principal, b: Principal) -> None:
    with session_scope(db_url) as session:
        v1 = standards.create_standard(session, a, _doc())
        study = _study(session, a, v1)
        _trial(session, study, 0, 0.99, accepted=False)
        _trial(session, study, 1, 0.975, accepted=True, lr=2e-3)
        _trial(session, study, 2, 0.972, accepted=True)
        standards.publish_version(session, a, "vision-baseline", _doc(description="later edit"))
        study_id = study.id

    with session_scope(db_url) as session:
        with pytest.raises(NotFound):
            standards.promote_best(session, b, study_id)
        v3 = standards.promote_best(session, a, study_id)
        assert v3.version == 3
        assert v3.changelog == f"promoted from study {study_id} trial 1 (value 0.975)"
        doc = standards.document_of(v3)
        assert doc.description == "later edit"
        assert doc.rule("optimizer").default == "sgd"  # type: ignore[union-attr]
        assert doc.rule("lr").default == 2e-3  # type: ignore[union-attr]
        assert doc.rule("batch_size").default == 64  # type: ignore[union-attr]
        assert doc.defaults.fixed == {"weight_decay": 0.0, "lr": 2e-3, "optimizer": "sgd",
                                      "batch_size": 64}
        [entry] = [e for e in _audit(session, a.team_id) if e.action == "standard.promote"]
        assert entry.details["study_id"] == study_id and entry.details["trial_number"] == 1
        assert entry.details["changes"]["rules_changed"] == ["optimizer", "lr", "batch_size"]

        merged, applied = standards.apply_defaults({"name": "next"}, doc)
        assert merged["fixed"]["lr"] == 2e-3 and "fixed.batch_size" in applied

    with session_scope(db_url) as session:
        with pytest.raises(Conflict, match="already carries"):
            standards.promote_best(session, a, study_id)
        loaded = session.get(Study, study_id)
        rejected = session.scalar(
            select(Trial).where(Trial.study_id == study_id, Trial.number == 0)
        )
        assert loaded is not None and rejected is not None
        with pytest.raises(Conflict, match="accepted"):
            standards.promote(session, a, loaded, rejected)


def test_promote_skips_values_a_rule_does_not_admit(db_url: str, a: Principal) -> None:
    with session_scope(db_url) as session:
        v1 = standards.create_standard(session, a, _doc())
        study = _study(session, a, v1, override_reason="wide lr")
        trial = _trial(session, study, 0, 0.98, accepted=True, lr=0.05)
        v2 = standards.promote(session, a, study, trial)
        doc = standards.document_of(v2)
        assert doc.rule("lr").default == 1e-3  # type: ignore[union-attr]
        assert "lr" not in (doc.defaults.fixed or {})
        [entry] = [e for e in _audit(session, a.team_id) if e.action == "standard.promote"]
        assert entry.details["skipped"] == ["lr"]


def test_verdicts_are_json_safe_on_the_trial_row(db_url: str, a: Principal) -> None:
    with session_scope(db_url) as session:
        v1 = standards.create_standard(session, a, _doc())
        study = _study(session, a, v1)
        trial = _trial(session, study, 0, float("nan"), accepted=None)
        verdict = standards.evaluate(
            standards.document_of(v1).acceptance,
            {"val_accuracy": float("nan"), "generalization_gap": float("inf")},
            {"val_accuracy": [0.9, 0.91]},
            standard=standards.version_ref(v1),
        )
        trial.verdict, trial.accepted = verdict.model_dump(), verdict.accepted
        trial_id = trial.id
    with session_scope(db_url) as session:
        row = session.get(Trial, trial_id)
        assert row is not None and row.verdict is not None and row.accepted is False
        assert [c["observed"] for c in row.verdict["criteria"]] == ["nan", "inf", None]
        assert row.verdict["standard"] == "vision-baseline@1" and not row.verdict["pending"]
