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
from sqlalchemy.orm import Session

from tuneboard.db.models import StandardVersion, Study, Trial
from tuneboard.errors import NotFound
from tuneboard.optimization.params import external_params
from tuneboard.schemas import JsonObject, Number, UtcDatetime
from tuneboard.spec import Direction, StandardRef, StudyState
from tuneboard.standards import repository
from tuneboard.standards.acceptance import evaluate
from tuneboard.standards.schemas import document_of

__all__ = ["STUDIES_PER_VERSION", "StandardUsage", "standard_usage"]

STUDIES_PER_VERSION = 100


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
    standard = repository.get_standard(session, team_id, name)
    if standard is None:
        raise NotFound(f"standard {name!r} not found")
    versions = repository.all_versions(session, standard.id)
    by_id = {v.id: v for v in versions}
    studies = repository.studies_under_versions(session, team_id, list(by_id))
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
    for study_id, accepted, n in repository.judged_trial_counts(session, study_ids):
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
    for version_id, verdict in repository.stream_verdicts(session, team_id, version_ids):
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
    trials = repository.best_accepted_trials(session, studies)

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
