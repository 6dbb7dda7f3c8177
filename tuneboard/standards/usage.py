"""How a standard has been used: the studies run under each version, their overrides, how the
trials fared against each acceptance criterion, and the best accepted trial per version.

Decisions:
- Counts are over judged trials (those with a verdict). A trial is accepted, rejected or
  pending (stability evidence still owed) by its ``accepted`` column; per criterion, by the
  evidence its verdict stored for that criterion (passed, failed, or pending).
- Criteria are listed in the version's document order; a criterion is known by its kind,
  metric, operator and threshold, as the verdict records it.
- "Best" compares like with like: per version, one best accepted trial for each objective
  (first metric and its direction) the version's studies optimise, usually just one.
- Each version lists its newest ``STUDIES_PER_VERSION`` studies; ``studies_total`` counts all.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from tuneboard.db.models import Standard, StandardVersion, Study, Trial
from tuneboard.db.queries import ranked_trials
from tuneboard.errors import NotFound
from tuneboard.optimization.params import external_params
from tuneboard.schemas import JsonObject, Number, UtcDatetime
from tuneboard.spec import Direction, StandardRef, StudyState
from tuneboard.standards.acceptance import evaluate
from tuneboard.standards.schemas import document_of

__all__ = ["STUDIES_PER_VERSION", "StandardUsage", "standard_usage"]

STUDIES_PER_VERSION = 100
_STREAM_ROWS = 1000


class TrialCounts(BaseModel):
    accepted: int = 0
    rejected: int = 0
    pending: int = 0


class UsageStudy(BaseModel):
    """A study run under the version."""

    id: int
    name: str
    state: StudyState
    version: int
    override_reason: str | None = Field(
        None, description="Why it was admitted although it breaks the standard's rules."
    )
    created_at: UtcDatetime
    trials: TrialCounts


class CriterionUsage(BaseModel):
    """One acceptance criterion and how many judged trials passed, failed or await it."""

    kind: str
    metric: str
    op: str
    threshold: float
    passed: int = 0
    failed: int = 0
    pending: int = 0


class BestAccepted(BaseModel):
    """The best accepted trial under the version for one objective."""

    metric: str
    direction: Direction
    study_id: int
    study_name: str
    trial_number: int
    value: Number
    params: JsonObject


class VersionUsage(BaseModel):
    version: int
    standard: str = Field(description='"name@N"')
    status: Literal["active", "deprecated"]
    studies_total: int
    overrides: int = Field(description="Studies admitted under an override reason.")
    studies: list[UsageStudy] = Field(description="The newest studies first.")
    trials: TrialCounts
    criteria: list[CriterionUsage]
    best_accepted: list[BestAccepted]


class StandardUsage(BaseModel):
    """GET /standards/{name}/usage: every version of the standard, oldest first."""

    name: str
    versions: list[VersionUsage]


_Key = tuple[str, str, str, float]


def _key(result: Mapping[str, Any]) -> _Key:
    return (str(result.get("kind")), str(result.get("metric")), str(result.get("op")),
            float(result.get("threshold") or 0.0))


@dataclass
class _Tally:
    criteria: dict[_Key, CriterionUsage] = field(default_factory=dict)

    def add(self, verdict: Mapping[str, Any]) -> None:
        for result in verdict.get("criteria") or []:
            key = _key(result)
            row = self.criteria.get(key)
            if row is None:
                row = self.criteria[key] = CriterionUsage(
                    kind=key[0], metric=key[1], op=key[2], threshold=key[3]
                )
            if result.get("pending"):
                row.pending += 1
            elif result.get("passed"):
                row.passed += 1
            else:
                row.failed += 1


def standard_usage(session: Session, team_id: int, name: str) -> StandardUsage:
    standard = session.scalar(
        select(Standard).where(Standard.team_id == team_id, Standard.name == name)
    )
    if standard is None:
        raise NotFound(f"standard {name!r} not found")
    versions = list(
        session.scalars(
            select(StandardVersion)
            .where(StandardVersion.standard_id == standard.id)
            .order_by(StandardVersion.version)
        )
    )
    by_id = {v.id: v for v in versions}
    studies = list(
        session.scalars(
            select(Study)
            .where(Study.team_id == team_id, Study.standard_version_id.in_(by_id))
            .order_by(Study.id.desc())
        )
    )
    counts = _trial_counts(session, [s.id for s in studies])
    tallies = _criterion_tallies(session, team_id, list(by_id))
    best = _best_accepted(session, [s for s in studies if counts[s.id].accepted])

    per_version: dict[int, list[Study]] = defaultdict(list)
    for study in studies:
        assert study.standard_version_id is not None
        per_version[study.standard_version_id].append(study)
    out = []
    for version in versions:
        mine = per_version[version.id]
        total = TrialCounts()
        for study in mine:
            for kind in ("accepted", "rejected", "pending"):
                setattr(total, kind, getattr(total, kind) + getattr(counts[study.id], kind))
        out.append(
            VersionUsage(
                version=version.version,
                standard=str(StandardRef(standard.name, version.version)),
                status=version.status,
                studies_total=len(mine),
                overrides=sum(1 for s in mine if s.override_reason is not None),
                studies=[
                    UsageStudy(id=s.id, name=s.name, state=s.state, version=version.version,
                               override_reason=s.override_reason, created_at=s.created_at,
                               trials=counts[s.id])
                    for s in mine[:STUDIES_PER_VERSION]
                ],
                trials=total,
                criteria=_in_document_order(version, tallies.get(version.id, _Tally())),
                best_accepted=best.get(version.id, []),
            )
        )
    return StandardUsage(name=standard.name, versions=out)


def _trial_counts(session: Session, study_ids: list[int]) -> defaultdict[int, TrialCounts]:
    counts: defaultdict[int, TrialCounts] = defaultdict(TrialCounts)
    if not study_ids:
        return counts
    rows = session.execute(
        select(Trial.study_id, Trial.accepted, func.count())
        .where(Trial.study_id.in_(study_ids), Trial.verdict.is_not(None))
        .group_by(Trial.study_id, Trial.accepted)
    )
    for study_id, accepted, n in rows:
        row = counts[study_id]
        if accepted is None:
            row.pending += n
        elif accepted:
            row.accepted += n
        else:
            row.rejected += n
    return counts


def _criterion_tallies(
    session: Session, team_id: int, version_ids: list[int]
) -> dict[int, _Tally]:
    """Per version, the criteria counts over every judged trial; the verdicts are streamed, so
    memory stays flat however many trials there are."""
    tallies: dict[int, _Tally] = defaultdict(_Tally)
    if not version_ids:
        return tallies
    rows = session.execute(
        select(Study.standard_version_id, Trial.verdict)
        .join(Study, Study.id == Trial.study_id)
        .where(
            Study.team_id == team_id,
            Study.standard_version_id.in_(version_ids),
            Trial.verdict.is_not(None),
        )
        .execution_options(yield_per=_STREAM_ROWS)
    )
    for version_id, verdict in rows:
        tallies[version_id].add(verdict or {})
    return tallies


def _in_document_order(version: StandardVersion, tally: _Tally) -> list[CriterionUsage]:
    # Judging nothing yields each criterion of the document as verdicts record it, in order.
    empty = evaluate(document_of(version).acceptance, {})
    ordered = []
    for result in empty.criteria:
        key = _key(result.model_dump())
        row = tally.criteria.pop(key, None)
        ordered.append(
            row or CriterionUsage(kind=key[0], metric=key[1], op=key[2], threshold=key[3])
        )
    return ordered + list(tally.criteria.values())


def _best_accepted(session: Session, studies: Iterable[Study]) -> dict[int, list[BestAccepted]]:
    """Per version, the best accepted trial for each objective of its studies."""
    studies = sorted((s for s in studies if s.spec_model is not None and s.directions),
                     key=lambda s: s.id)
    if not studies:
        return {}
    t = aliased(Trial)
    best_ids: dict[int, int] = {}
    for maximize in (True, False):
        ids = [s.id for s in studies if s.maximizes is maximize]
        if not ids:
            continue
        best_id = (
            ranked_trials(Study.id, maximize=maximize, accepted_only=True, columns=(t.id,),
                          trial=t)
            .limit(1)
            .correlate(Study)
            .scalar_subquery()
        )
        rows = session.execute(select(Study.id, best_id).where(Study.id.in_(ids)))
        best_ids.update({sid: tid for sid, tid in rows if tid is not None})
    trials = {tr.study_id: tr for tr in session.scalars(
        select(Trial).where(Trial.id.in_(best_ids.values()))
    )}

    winners: dict[tuple[int, str, Direction], tuple[Study, Trial]] = {}
    for study in studies:
        trial = trials.get(study.id)
        spec = study.spec_model
        if trial is None or trial.value is None or spec is None:
            continue
        assert study.standard_version_id is not None
        key = (study.standard_version_id, spec.metrics[0], study.directions[0])
        held = winners.get(key)
        if held is None or _better(trial, held[1], study.maximizes):
            winners[key] = (study, trial)

    out: dict[int, list[BestAccepted]] = defaultdict(list)
    for (version_id, metric, direction), (study, trial) in sorted(
        winners.items(), key=lambda item: (item[0][0], item[0][1], str(item[0][2]))
    ):
        out[version_id].append(
            BestAccepted(
                metric=metric,
                direction=direction,
                study_id=study.id,
                study_name=study.name,
                trial_number=trial.number,
                value=trial.value,
                params=external_params(trial.params or {}, trial.distributions or {}),
            )
        )
    return out


def _better(trial: Trial, other: Trial, maximize: bool) -> bool:
    """Ranked as ``ranked_trials`` ranks within a study; across studies a tie keeps the
    earlier study's trial."""
    assert trial.value is not None and other.value is not None
    return trial.value > other.value if maximize else trial.value < other.value
