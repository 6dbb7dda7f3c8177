"""What the API returns for studies, trials, metrics and leaderboards, and what it takes to
enqueue a trial.

Built from rows by the ``of`` constructors; nothing here queries. Trial parameters are shown in
Optuna's external representation (the value the objective saw: ``"adam"``, not the index ``6.0``).
Non-finite numbers are ``null`` (``tuneboard.schemas``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tuneboard.db.models import Ensemble, Study, Trial
from tuneboard.leaderboard import StudyBest
from tuneboard.optimization.params import external_params
from tuneboard.schemas import (
    JsonObject,
    Number,
    Page,
    UtcDatetime,
    View,
    finite_or_none,
    json_safe,
)
from tuneboard.spec import EXAMPLE_SPEC, StudyState, TrialState
from tuneboard.spec.states import TrialOrigin
from tuneboard.standards.schemas import version_ref
from tuneboard.studies.ensemble_schemas import EnsembleOut


def trial_params(trial: Trial) -> dict[str, Any]:
    """The trial's parameters; a trial that has not started shows the values it was given."""
    if trial.params:
        return json_safe(external_params(trial.params, trial.distributions or {}))
    fixed = (trial.system_attrs or {}).get("fixed_params")
    return json_safe(dict(fixed)) if isinstance(fixed, Mapping) else {}


def spec_metrics(study: Study) -> list[str]:
    """The objective metric names; a study made through Optuna's API (no spec) numbers them."""
    spec = study.spec_model
    if spec is not None:
        return spec.objective.metrics
    return [f"objective_{i}" for i in range(len(study.directions or []))]


def standard_ref(study: Study) -> str | None:
    version = study.standard_version
    return None if version is None else version_ref(version)


# --- studies ------------------------------------------------------------------------------------


class TrialCounts(View):
    """Number of trials per state."""

    waiting: int = 0
    running: int = 0
    complete: int = 0
    pruned: int = 0
    fail: int = 0

    @classmethod
    def of(cls, counts: Mapping[TrialState, int]) -> TrialCounts:
        return cls(**{k: v for k, v in counts.items() if k in cls.model_fields})

    @property
    def total(self) -> int:
        return self.waiting + self.running + self.complete + self.pruned + self.fail


class TrialSummary(View):
    """A trial as lists show it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "number": 7,
                    "state": "complete",
                    "origin": "sampler",
                    "params": {"lr": 0.0031, "optimizer": "adam", "batch_size": 64},
                    "value": 0.9722,
                    "values": [0.9722],
                    "epochs_run": 18,
                    "attempt": 1,
                    "retry_of": None,
                    "seed": 49,
                    "worker": "celery@gpu-1",
                    "device": "cuda:0",
                    "accepted": True,
                    "verdict": {"accepted": True, "criteria": []},
                    "datetime_start": "2026-11-22T10:00:00Z",
                    "datetime_complete": "2026-11-22T10:01:12Z",
                }
            ]
        }
    )

    number: int
    state: TrialState
    origin: TrialOrigin = Field(description="Why the trial exists.")
    params: JsonObject = Field(description="Parameters in their external representation.")
    value: Number = Field(None, description="First objective value; null if none or non-finite.")
    values: list[Number] | None = None
    epochs_run: int = 0
    attempt: int = 1
    retry_of: int | None = Field(None, description="Number of the trial this one retries.")
    seed: int | None = None
    worker: str | None = None
    device: str | None = None
    accepted: bool | None = None
    verdict: JsonObject | None = None
    datetime_start: UtcDatetime | None = None
    datetime_complete: UtcDatetime | None = None

    @classmethod
    def of(cls, trial: Trial) -> TrialSummary:
        return cls(**_trial_fields(trial))


def _trial_fields(trial: Trial) -> dict[str, Any]:
    return {
        "number": trial.number,
        "state": trial.state,
        "origin": trial.origin,
        "params": trial_params(trial),
        "value": trial.value,
        "values": list(trial.values) if trial.values is not None else None,
        "epochs_run": trial.epochs_run or 0,
        "attempt": trial.attempt or 1,
        "retry_of": trial.retry_of,
        "seed": trial.seed,
        "worker": trial.worker,
        "device": trial.device,
        "accepted": trial.accepted,
        "verdict": trial.verdict,
        "datetime_start": trial.datetime_start,
        "datetime_complete": trial.datetime_complete,
    }


class StepValue(View):
    step: int
    value: Number


class TrialDetail(TrialSummary):
    """One trial, with the error of a failed one and its reported (intermediate) values."""

    error: str | None = None
    intermediate_values: list[StepValue] = Field(
        default_factory=list, description="The values reported to the pruner, by step."
    )
    heartbeat_at: UtcDatetime | None = None
    checkpoint_path: str | None = Field(None, description="Where its checkpoints are kept.")
    user_attrs: JsonObject = Field(default_factory=dict)

    @classmethod
    def of(cls, trial: Trial) -> TrialDetail:
        steps = []
        for step, value in (trial.intermediate_values or {}).items():
            try:
                steps.append(StepValue(step=int(step), value=value))
            except ValueError:
                continue
        steps.sort(key=lambda s: s.step)
        return cls(
            **_trial_fields(trial),
            error=trial.error,
            intermediate_values=steps,
            heartbeat_at=trial.heartbeat_at,
            checkpoint_path=trial.checkpoint_path,
            user_attrs=trial.user_attrs or {},
        )


class StudySummary(View):
    """A study as lists show it."""

    id: int
    name: str
    state: StudyState
    metrics: list[str] = Field(description="The objective metric(s), in objective order.")
    directions: list[str]
    standard: str | None = Field(None, description='The pinned standard version, "name@N".')
    counts: TrialCounts
    n_trials: int = Field(description="Trials created so far, in any state.")
    created_at: UtcDatetime
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    error: str | None = None
    stop_reason: str | None = Field(
        None, description="Why the study ended before its budget was spent, when it did."
    )
    parent_id: int | None = Field(None, description="The study this one was cloned from.")

    @classmethod
    def of(cls, study: Study, counts: Mapping[TrialState, int]) -> StudySummary:
        return cls(**_study_fields(study, counts))


def _study_fields(study: Study, counts: Mapping[TrialState, int]) -> dict[str, Any]:
    tally = TrialCounts.of(counts)
    return {
        "id": study.id,
        "name": study.name,
        "state": study.state,
        "metrics": spec_metrics(study),
        "directions": [str(d).lower() for d in study.directions or []],
        "standard": standard_ref(study),
        "counts": tally,
        "n_trials": tally.total,
        "created_at": study.created_at,
        "started_at": study.started_at,
        "finished_at": study.finished_at,
        "error": study.error,
        "stop_reason": study.stop_reason,
        "parent_id": study.parent_id,
    }


class StudyDetail(StudySummary):
    """One study: its validated spec, progress per trial state and its best trial so far."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 12,
                    "name": "digits-mlp",
                    "state": "running",
                    "metrics": ["val_accuracy"],
                    "directions": ["maximize"],
                    "standard": "vision-baseline@3",
                    "counts": {"waiting": 2, "running": 4, "complete": 30, "pruned": 11,
                               "fail": 0},
                    "n_trials": 47,
                    "created_at": "2026-11-22T10:00:00Z",
                    "started_at": "2026-11-22T10:00:01Z",
                    "finished_at": None,
                    "error": None,
                    "spec": EXAMPLE_SPEC,
                    "spec_hash": "3f1c...",
                    "override_reason": None,
                    "created_by": "key:4",
                    "best_trial": None,
                }
            ]
        }
    )

    spec: JsonObject = Field(description="The validated spec, standard defaults merged in.")
    spec_hash: str | None = None
    override_reason: str | None = Field(
        None, description="Why the study may leave its standard's rules, when it does."
    )
    created_by: str | None = None
    best_trial: TrialSummary | None = Field(
        None, description="The best complete trial by the first objective."
    )
    ensemble: EnsembleOut | None = Field(
        None,
        description="On GET: the study's latest ensemble (as GET /studies/{id}/ensemble), its "
        "gain on the best single member and, when the standard asked for it, its verdict.",
    )

    @classmethod
    def of_study(
        cls,
        study: Study,
        counts: Mapping[TrialState, int],
        best: Trial | None,
        ensemble: Ensemble | None = None,
    ) -> StudyDetail:
        return cls(
            **_study_fields(study, counts),
            spec=study.spec or {},
            spec_hash=study.spec_hash,
            override_reason=study.override_reason,
            created_by=study.created_by,
            best_trial=TrialSummary.of(best) if best is not None else None,
            ensemble=EnsembleOut.of(ensemble) if ensemble is not None else None,
        )


class StudyAccepted(View):
    """A cancel request was accepted; running trials stop within one epoch."""

    id: int
    state: StudyState

    @classmethod
    def of(cls, study: Study) -> StudyAccepted:
        return cls(id=study.id, state=study.state)


class EnqueueTrialRequest(BaseModel):
    """Parameters for one trial, in the search space's terms (``{"lr": 0.001, ...}``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"params": {"lr": 0.001, "optimizer": "adam"}}]},
    )

    params: dict[str, Any]


# --- metrics ------------------------------------------------------------------------------------


class MetricsAtStep(View):
    """Every metric reported at one step (epoch)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"step": 3, "metrics": {"train_loss": 0.41, "val_loss": 0.45,
                                        "val_accuracy": 0.91, "lr": 0.001}}
            ]
        }
    )

    step: int
    metrics: dict[str, Number]

    @classmethod
    def group(cls, rows: Sequence[tuple[int, str, float | None]]) -> list[MetricsAtStep]:
        by_step: dict[int, dict[str, float | None]] = {}
        for step, name, value in rows:
            by_step.setdefault(step, {})[name] = value
        return [cls(step=step, metrics=metrics) for step, metrics in by_step.items()]


# --- leaderboards -------------------------------------------------------------------------------


class LeaderboardEntry(View):
    """A ranked complete trial (rank 1 is the best by the first objective)."""

    rank: int
    number: int
    value: Number
    values: list[Number] | None = None
    params: JsonObject
    verdict: JsonObject | None = None
    accepted: bool | None = None
    epochs_run: int = 0
    datetime_complete: UtcDatetime | None = None

    @classmethod
    def of(cls, rank: int, trial: Trial) -> LeaderboardEntry:
        return cls(
            rank=rank,
            number=trial.number,
            value=trial.value,
            values=list(trial.values) if trial.values is not None else None,
            params=trial_params(trial),
            verdict=trial.verdict,
            accepted=trial.accepted,
            epochs_run=trial.epochs_run or 0,
            datetime_complete=trial.datetime_complete,
        )


class StudyLeaderboard(Page[LeaderboardEntry]):
    """Complete trials ranked by the first objective in its direction. A multi-objective study
    is ranked by its first objective too (``multi_objective`` says so); ``values`` has them all."""

    study_id: int
    metric: str
    direction: str
    multi_objective: bool = False


class TeamLeaderboardEntry(View):
    """The best complete trial of one study of the team."""

    rank: int = Field(description="Rank among the studies with the same metric.")
    study_id: int
    study_name: str
    standard: str | None = None
    dataset: str | None = None
    metric: str
    direction: str
    number: int = Field(description="The trial's number in its study.")
    value: Number
    params: JsonObject
    verdict: JsonObject | None = None
    accepted: bool | None = None

    @classmethod
    def of(cls, best: StudyBest) -> TeamLeaderboardEntry:
        return cls(
            rank=best.rank,
            study_id=best.study.id,
            study_name=best.study.name,
            standard=standard_ref(best.study),
            dataset=best.dataset,
            metric=best.metric,
            direction=best.direction,
            number=best.trial.number,
            value=best.trial.value,
            params=trial_params(best.trial),
            verdict=best.trial.verdict,
            accepted=best.trial.accepted,
        )


class Importance(View):
    """Parameter importance by one of Optuna's evaluators (sums to 1 when not empty)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "study_id": 12,
                    "evaluator": "ped_anova",
                    "metric": "val_accuracy",
                    "n_trials": 30,
                    "importances": {"lr": 0.71, "batch_size": 0.18, "dropout": 0.11},
                    "reason": None,
                }
            ]
        }
    )

    study_id: int
    evaluator: str
    metric: str
    n_trials: int = Field(description="Complete trials the evaluator used.")
    importances: dict[str, Number] = Field(description="Parameter -> importance, largest first.")
    reason: str | None = Field(None, description="Why importances are empty, when they are.")


TRIAL_TABLE_COLUMNS = (
    "number", "state", "values", "params", "datetime_start", "datetime_complete", "epochs_run",
    "attempt", "retry_of", "worker", "device", "accepted", "origin",
)


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class TrialTable(BaseModel):
    """Every trial of a study (or every one from ``from_number`` on), by number. ``params`` of a
    row is aligned with ``param_names`` (null where the trial has no such parameter);
    non-finite values are null."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "study_id": 12,
                    "from_number": 0,
                    "metrics": ["val_accuracy"],
                    "directions": ["maximize"],
                    "param_names": ["lr", "optimizer"],
                    "columns": list(TRIAL_TABLE_COLUMNS),
                    "rows": [[0, "complete", [0.97], [0.003, "adam"], "2026-11-22T10:00:00Z",
                              "2026-11-22T10:01:12Z", 18, 1, None, "celery@host", "cpu", True,
                              "sampler"]],
                }
            ]
        }
    )

    study_id: int
    from_number: int = Field(
        description="The rows are every trial numbered from this on; 0 for the whole study."
    )
    metrics: list[str] = Field(description="The objective metric(s), in objective order.")
    directions: list[str]
    param_names: list[str] = Field(
        description="Every parameter name of these rows, in order of appearance."
    )
    columns: list[str] = Field(description="What each row holds, in order.")
    rows: list[list[Any]]

    @classmethod
    def of(cls, study: Study, trials: Sequence[Trial], *, from_number: int = 0) -> TrialTable:
        params = [trial_params(t) for t in trials]
        names: dict[str, None] = {}
        for p in params:
            names.update(dict.fromkeys(p))
        rows = [
            [
                t.number,
                t.state,
                [finite_or_none(v) for v in t.values] if t.values is not None else None,
                [p.get(name) for name in names],
                _utc(t.datetime_start),
                _utc(t.datetime_complete),
                t.epochs_run or 0,
                t.attempt or 1,
                t.retry_of,
                t.worker,
                t.device,
                t.accepted,
                t.origin,
            ]
            for t, p in zip(trials, params, strict=True)
        ]
        return cls(
            study_id=study.id,
            from_number=from_number,
            metrics=spec_metrics(study),
            directions=[str(d).lower() for d in study.directions or []],
            param_names=list(names),
            columns=list(TRIAL_TABLE_COLUMNS),
            rows=rows,
        )


class StudyProgress(View):
    """What a server-sent event carries: the study's state and trial counts."""

    study_id: int
    state: StudyState
    counts: TrialCounts
    best_value: Number = None
    finished: bool
    stop_reason: str | None = None

    @classmethod
    def of(
        cls, study: Study, counts: Mapping[TrialState, int], best: Trial | None, *, finished: bool
    ) -> StudyProgress:
        return cls(
            study_id=study.id,
            state=study.state,
            counts=TrialCounts.of(counts),
            best_value=best.value if best is not None else None,
            finished=finished,
            stop_reason=study.stop_reason,
        )
