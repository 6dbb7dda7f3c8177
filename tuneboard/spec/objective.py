"""The objective: what a trial computes (the built-in trainer, an entry point, or code outside
Tuneboard that asks for trials over HTTP: ``external: true``) and its metrics."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from tuneboard.spec import catalog
from tuneboard.spec._problems import (
    Loc,
    _did_you_mean,
    _error,
    _listing,
    _Problems,
    _raise_at,
    _Spec,
)
from tuneboard.spec.scalars import JsonBool, JsonFloat, JsonInt
from tuneboard.spec.trainer import DEFAULT_MAX_EPOCHS, DEFAULT_VALIDATION_FRACTION

__all__ = ["TRAINER_OPTIONS", "Direction", "LRScalingSpec", "ObjectiveSpec", "ValidationSpec"]

# What only the built-in trainer reads; an external objective runs its own code and takes none.
TRAINER_OPTIONS = ("dataset", "dataset_options", "target", "task", "model", "validation",
                   "lr_scaling")
_METRIC_NAME_MAX = 100

_ENTRYPOINT_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")


class Direction(StrEnum):
    """Which way an objective improves; the values are Optuna's direction names."""

    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"


class ValidationSpec(_Spec):
    """How the built-in trainer holds out data: a ``fraction`` split, or ``k_folds`` folds.

    Give one of the two. ``fraction`` defaults to 0.2 when ``k_folds`` is not given and is None
    when it is, so a validated spec says which scheme it uses.
    """

    fraction: JsonFloat | None = Field(None, gt=0, lt=1)
    stratify: JsonBool = True
    seed: JsonInt = Field(0, ge=0)
    k_folds: JsonInt | None = Field(None, ge=2, le=100)

    @model_validator(mode="after")
    def _one_scheme(self) -> Self:
        if self.k_folds is not None and self.fraction is not None:
            _raise_at(
                ("k_folds",),
                "Give either fraction (a hold-out split) or k_folds (cross-validation), not both.",
                self.k_folds,
                "conflict",
            )
        if self.k_folds is None and self.fraction is None:
            self.fraction = DEFAULT_VALIDATION_FRACTION
        return self


class LRScalingSpec(_Spec):
    """Linear scaling rule: lr is multiplied by batch_size / base_batch_size."""

    rule: Literal["linear"]
    base_batch_size: JsonInt = Field(gt=0)


_TRAINER_OPTION_DEFAULTS: dict[str, Any] = {
    "dataset": None, "dataset_options": None, "target": "target", "task": None, "model": None,
    "validation": ValidationSpec(), "lr_scaling": None,
}


class ObjectiveSpec(_Spec):
    """What a trial computes: the built-in trainer, a registered entry point, or (``external:
    true``) code that runs outside Tuneboard and asks, reports and tells over HTTP; and its
    metric(s).

    One metric (``metric: val_accuracy``, ``direction: maximize``) or several for a
    multi-objective study (``metric: [val_accuracy, epoch_time_s]``,
    ``direction: [maximize, minimize]``, same length; ``metrics``/``directions`` are accepted as
    other spellings of the lists). For the built-in trainer ``task`` and ``model`` are filled in
    when left out.

    An external objective takes none of the trainer's options. ``reports`` (external only, may be
    left out) lists every metric name its clients report; when given, a report of any other name
    is refused. ``max_epochs`` is then the most steps a trial reports, which sizes the pruner.
    """

    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["builtin"], "properties": {"builtin": {"enum": ["classifier", "regressor"]}}},
        {"required": ["entrypoint"], "properties": {"entrypoint": {"type": "string"}}},
        {"required": ["external"], "properties": {"external": {"const": True}}},
    ]})

    external: JsonBool = False
    builtin: Literal["classifier", "regressor"] | None = None
    entrypoint: str | None = Field(None, max_length=200)
    reports: list[str] | None = Field(None, min_length=1, max_length=200)
    dataset: str | None = Field(None, min_length=1, max_length=1000)
    dataset_options: dict[str, Any] | None = None
    target: str = Field("target", min_length=1, max_length=200)
    task: Literal["classification", "regression"] | None = None
    model: str | None = None
    metric: str | list[str]
    direction: Direction | list[Direction]
    max_epochs: JsonInt = Field(DEFAULT_MAX_EPOCHS, ge=1, le=10_000)
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    lr_scaling: LRScalingSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _plural_spellings(cls, data: Any) -> Any:
        # ``metrics: [a, b]`` / ``directions: [...]`` read as the lists they name.
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for plural, singular in (("metrics", "metric"), ("directions", "direction")):
            if plural not in data:
                continue
            if singular in data:
                _raise_at((plural,), f"Give {singular} or {plural}, not both.", data[plural],
                          "conflict")
            data[singular] = data.pop(plural)
        return data

    @field_validator("reports")
    @classmethod
    def _report_names(cls, value: list[str] | None) -> list[str] | None:
        for i, name in enumerate(value or []):
            if not 1 <= len(name) <= _METRIC_NAME_MAX:
                _raise_at((i,), f"A metric name has 1 to {_METRIC_NAME_MAX} characters.", name)
        return value

    @field_validator("entrypoint")
    @classmethod
    def _entrypoint_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENTRYPOINT_RE.match(value):
            raise _error(
                "invalid_name",
                f"{value!r} is not an entry point name; use letters, digits and _ . : -",
            )
        return value

    @field_validator("metric", mode="before")
    @classmethod
    def _metric_names(cls, value: Any) -> Any:
        many = isinstance(value, list)
        for i, name in enumerate(value if many else [value]):
            if not isinstance(name, str) or not 1 <= len(name) <= 200:
                _raise_at(
                    (i,) if many else (),
                    "metric is a metric name (1 to 200 characters), or a list of names for "
                    f"several objectives; {name!r} is not a name.",
                    name,
                )
        return value

    @field_validator("direction", mode="before")
    @classmethod
    def _direction_names(cls, value: Any) -> Any:
        many = isinstance(value, list)
        for i, item in enumerate(value if many else [value]):
            if item not in ("minimize", "maximize"):
                _raise_at(
                    (i,) if many else (),
                    f"direction is minimize or maximize (a list of them for several metrics), "
                    f"not {item!r}.",
                    item,
                )
        return value

    @property
    def metrics(self) -> list[str]:
        return [self.metric] if isinstance(self.metric, str) else list(self.metric)

    @property
    def directions(self) -> list[Direction]:
        return [self.direction] if isinstance(self.direction, str) else list(self.direction)

    @property
    def is_multi_objective(self) -> bool:
        return len(self.metrics) > 1

    def reported_metrics(self) -> frozenset[str] | None:
        """The metric names the built-in trainer reports for this objective; None for others."""
        if self.builtin is None or self.task is None:
            return None
        return catalog.reported_metric_names(
            self.task, cross_validated=self.validation.k_folds is not None
        )

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = _Problems("ObjectiveSpec")
        if not self.external and self.reports is not None:
            problems.add(("reports",), "reports is for an external objective (external: true); "
                         "the built-in trainer and entry points report what they report.",
                         self.reports)
        if self.external:
            self._check_external(problems)
        elif self.builtin is None and self.entrypoint is None:
            problems.add(
                (),
                "Give either builtin (classifier or regressor) or entrypoint (the name of an "
                "objective registered under tuneboard.objectives), or external: true for "
                "trials that run outside Tuneboard.",
            )
        elif self.builtin is not None and self.entrypoint is not None:
            problems.add(("entrypoint",), "Give builtin or entrypoint, not both.", self.entrypoint)
        elif self.builtin is not None:
            self._check_builtin(problems)
        self._check_metric_shape(problems)
        problems.raise_if_any()
        return self

    def _check_external(self, problems: _Problems) -> None:
        for key in ("builtin", "entrypoint"):
            if getattr(self, key) is not None:
                problems.add(
                    (key,),
                    f"An external objective runs the client's own code; drop {key} (or drop "
                    "external: true to run it on our workers).",
                    getattr(self, key),
                    "conflict",
                )
        for key in TRAINER_OPTIONS:
            if getattr(self, key) != _TRAINER_OPTION_DEFAULTS[key]:
                problems.add(
                    (key,),
                    f"{key} is an option of the built-in trainer; an external objective runs "
                    "its own code and takes none of them.",
                    getattr(self, key),
                    "unsupported",
                )
        if self.reports is None:
            return
        for i, name in enumerate(self.reports):
            if name in self.reports[:i]:
                problems.add(("reports", i), f"{name} is listed twice.", name)
        many = isinstance(self.metric, list)
        for i, name in enumerate(self.metrics):
            if name not in self.reports:
                problems.add(
                    ("metric", i) if many else ("metric",),
                    f"{name!r} is not among the metrics the clients report (reports: "
                    f"{_listing(self.reports)}).{_did_you_mean(name, self.reports)}",
                    name,
                    "unknown_metric",
                )

    def _check_builtin(self, problems: _Problems) -> None:
        task: Literal["classification", "regression"] = (
            "classification" if self.builtin == "classifier" else "regression"
        )
        if self.task is not None and self.task != task:
            problems.add(
                ("task",),
                f"builtin: {self.builtin} solves {task}, not {self.task}; "
                f"leave task out or use builtin: "
                f"{'regressor' if self.builtin == 'classifier' else 'classifier'}.",
                self.task,
            )
        self.task = task
        bundled = list(catalog.BUNDLED_DATASETS)
        files = " or ".join(catalog.DATASET_FILE_SUFFIXES)
        if self.dataset is None:
            problems.add(
                ("dataset",),
                f"The built-in trainer needs a dataset: one of {_listing(bundled)}, or the path "
                f"of a {files} file.",
            )
        elif self.dataset in catalog.BUNDLED_DATASETS:
            if catalog.BUNDLED_DATASETS[self.dataset] != task:
                other = "regressor" if task == "classification" else "classifier"
                problems.add(
                    ("dataset",),
                    f"{self.dataset} is a {catalog.BUNDLED_DATASETS[self.dataset]} dataset; "
                    f"use builtin: {other}.",
                    self.dataset,
                )
        elif not self.dataset.endswith(catalog.DATASET_FILE_SUFFIXES):
            problems.add(
                ("dataset",),
                f"Unknown dataset {self.dataset!r}.{_did_you_mean(self.dataset, bundled)} "
                f"Bundled datasets: {_listing(bundled)}; a file must end in {files}.",
                self.dataset,
            )
        if self.model is None:
            self.model = "mlp"
        elif self.model not in catalog.MODELS:
            problems.add(
                ("model",),
                f"Unknown model {self.model!r}; valid models: {_listing(catalog.MODELS)}.",
                self.model,
            )
        elif self.model == "cnn" and self.dataset not in catalog.IMAGE_DATASETS:
            problems.add(
                ("model",),
                f"cnn needs image-shaped data ({_listing(sorted(catalog.IMAGE_DATASETS))}); "
                f"use mlp for {self.dataset}.",
                self.model,
            )

    def _check_metric_shape(self, problems: _Problems) -> None:
        if isinstance(self.metric, list):
            if len(self.metric) < 2:
                problems.add(
                    ("metric",),
                    "A list of metrics is for several objectives and needs at least two; "
                    "give a single metric as a string.",
                    self.metric,
                )
            for i, name in enumerate(self.metric):
                if name in self.metric[:i]:
                    problems.add(("metric", i), f"{name} is listed twice.", name)
            if not isinstance(self.direction, list) or len(self.direction) != len(self.metric):
                problems.add(
                    ("direction",),
                    f"metric lists {len(self.metric)} objectives, so direction must be a list "
                    f"of {len(self.metric)} directions (minimize or maximize), one per metric.",
                    self.direction,
                )
        elif isinstance(self.direction, list):
            problems.add(
                ("direction",),
                "A single metric takes a single direction: minimize or maximize.",
                self.direction,
            )
        reported = self.reported_metrics()
        if reported is None:
            return
        many = isinstance(self.metric, list)
        for i, name in enumerate(self.metrics):
            loc: Loc = ("metric", i) if many else ("metric",)
            if name not in reported:
                problems.add(
                    loc,
                    f"The built-in trainer does not report {name!r} for {self.task}."
                    f"{_did_you_mean(name, sorted(reported))} "
                    f"It reports: {_listing(sorted(reported))}.",
                    name,
                    "unknown_metric",
                )
                continue
            better = catalog.better_direction(name)
            directions = self.directions
            if better is not None and i < len(directions) and directions[i] != better:
                problems.add(
                    ("direction", i) if many else ("direction",),
                    f"{name} is better when {'lower' if better == 'minimize' else 'higher'}, "
                    f"so its direction should be {better}.",
                    directions[i],
                )
