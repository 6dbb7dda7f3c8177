"""The study spec (design section 4): the JSON body of ``POST /api/v1/studies``, validated.

Every model rejects unknown keys. Every error is a sentence located at the field it is about:
``("search_space", "lr", "high")``, ``("budget", "n_trials")``, ``("pruner",)``. Checks that span
several fields run on the model that holds them all and report every problem at once.

A validated spec round-trips: ``StudySpec.model_validate(spec.model_dump(mode="json"))`` gives the
same spec, so the stored JSON can be validated again by the worker.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from tuneboard.studies import catalog

__all__ = [
    "EXAMPLE_SPEC",
    "MAX_GRID_SIZE",
    "MULTI_OBJECTIVE_SAMPLERS",
    "AnyParam",
    "BudgetSpec",
    "CallbacksSpec",
    "CategoricalParam",
    "CheckpointKind",
    "CheckpointSpec",
    "ChoiceValue",
    "Direction",
    "EarlyStoppingSpec",
    "FloatParam",
    "IntParam",
    "LRScalingSpec",
    "LRScheduleSpec",
    "ObjectiveSpec",
    "OverrideSpec",
    "ParamSpec",
    "PrunerSpec",
    "ResourcesSpec",
    "SamplerSpec",
    "StudySpec",
    "ValidationSpec",
    "condition_holds",
    "dependency_order",
    "spec_hash",
]

Direction = Literal["minimize", "maximize"]
ChoiceValue = str | int | float | bool | None
Loc = tuple[int | str, ...]

MAX_GRID_SIZE = 100_000
MULTI_OBJECTIVE_SAMPLERS: tuple[str, ...] = ("nsga2", "tpe", "gp", "random", "qmc", "grid")

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_STANDARD_RE = re.compile(r"^[A-Za-z0-9_.-]+(@[1-9][0-9]*)?$")
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_QUEUE_RE = re.compile(r"^[a-z0-9_-]+$")
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:[0-9]+)$")
_ENTRYPOINT_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")

_PARAM_ALIASES: dict[str, str] = {
    "learning_rate": "lr",
    "wd": "weight_decay",
    "l2": "weight_decay",
    "bs": "batch_size",
    "batchsize": "batch_size",
    "hidden_size": "hidden",
    "hidden_dim": "hidden",
    "units": "hidden",
    "width": "hidden",
    "num_layers": "layers",
    "n_layers": "layers",
    "depth": "layers",
    "dropout_rate": "dropout",
    "opt": "optimizer",
    "normalization": "norm",
    "act": "activation",
}


def _error(code: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(code, "{reason}", {"reason": message})


def _listing(names: Iterable[object]) -> str:
    return ", ".join(str(n) for n in names)


def _did_you_mean(name: str, known: Sequence[str]) -> str:
    matches = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    alias = _PARAM_ALIASES.get(name.lower())
    if alias is not None and alias in known and alias not in matches:
        matches.insert(0, alias)
    if not matches:
        return ""
    return " Did you mean " + " or ".join(repr(m) for m in matches) + "?"


class _Problems:
    """Problems found by one validator, raised together as one ``ValidationError``."""

    def __init__(self, title: str) -> None:
        self._title = title
        self._errors: list[InitErrorDetails] = []

    def add(self, loc: Loc, message: str, value: Any = None, code: str = "invalid_spec") -> None:
        self._errors.append(InitErrorDetails(type=_error(code, message), loc=loc, input=value))

    def extend(self, exc: ValidationError, prefix: Loc = ()) -> None:
        for err in exc.errors():
            self.add(prefix + tuple(err["loc"]), err["msg"], err.get("input"), err["type"])

    def raise_if_any(self) -> None:
        if self._errors:
            raise ValidationError.from_exception_data(self._title, self._errors)


def _raise_at(loc: Loc, message: str, value: Any, code: str = "invalid_spec") -> None:
    problems = _Problems("StudySpec")
    problems.add(loc, message, value, code)
    problems.raise_if_any()


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _check_when(when: dict[str, list[Any]] | None, problems: _Problems) -> None:
    if when is None:
        return
    if not when:
        problems.add(
            ("when",),
            "when needs at least one condition; leave it out for a parameter that always applies.",
            when,
        )
    for dep, values in when.items():
        if not values:
            problems.add(("when", dep), f"List at least one value of {dep!r} that enables it.")


# --- search space -------------------------------------------------------------------------------


class FloatParam(_Spec):
    """A real-valued parameter in [low, high]; ``log`` samples on a log scale, ``step`` a grid."""

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = None
    when: dict[str, list[Any]] | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = _Problems("FloatParam")
        if self.low >= self.high:
            problems.add(
                ("high",),
                f"low must be less than high, but low is {self.low:g} and high is {self.high:g}.",
                self.high,
            )
        if self.log and self.low <= 0:
            problems.add(
                ("low",), f"A log scale needs low > 0, but low is {self.low:g}.", self.low
            )
        if self.step is not None:
            if self.log:
                problems.add(
                    ("step",), "step cannot be combined with log: true; drop one of them.",
                    self.step,
                )
            elif self.step <= 0:
                problems.add(
                    ("step",), f"step must be greater than 0, not {self.step:g}.", self.step
                )
            elif self.low < self.high:
                n = (self.high - self.low) / self.step
                if abs(n - round(n)) > 1e-6:
                    fit = float(
                        Decimal(repr(self.low)) + math.floor(n) * Decimal(repr(self.step))
                    )
                    problems.add(
                        ("step",),
                        f"high - low ({self.high - self.low:g}) must be a whole number of steps "
                        f"of {self.step:g}; try high = {fit:g}.",
                        self.step,
                    )
        _check_when(self.when, problems)
        problems.raise_if_any()
        return self

    def grid_size(self) -> int | None:
        """Number of values on the grid, None without a step (the range is continuous)."""
        if self.step is None:
            return None
        return round((self.high - self.low) / self.step) + 1

    def grid_values(self) -> list[float]:
        size = self.grid_size()
        if size is None:
            raise ValueError("a float parameter without a step has no grid")
        low, step = Decimal(repr(self.low)), Decimal(repr(self.step))
        return [float(low + i * step) for i in range(size)]


class IntParam(_Spec):
    """An integer parameter in [low, high] (both included), every ``step``-th value."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = 1
    when: dict[str, list[Any]] | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = _Problems("IntParam")
        if self.low >= self.high:
            problems.add(
                ("high",),
                f"low must be less than high, but low is {self.low} and high is {self.high}.",
                self.high,
            )
        if self.log and self.low < 1:
            problems.add(
                ("low",), f"A log scale needs low >= 1, but low is {self.low}.", self.low
            )
        if self.log and self.step != 1:
            problems.add(
                ("step",), "step cannot be combined with log: true; drop one of them.", self.step
            )
        elif self.step < 1:
            problems.add(("step",), f"step must be at least 1, not {self.step}.", self.step)
        elif self.low < self.high and (self.high - self.low) % self.step:
            fit = self.low + (self.high - self.low) // self.step * self.step
            problems.add(
                ("step",),
                f"high - low ({self.high - self.low}) must be a multiple of step ({self.step}); "
                f"try high = {fit}.",
                self.step,
            )
        _check_when(self.when, problems)
        problems.raise_if_any()
        return self

    def grid_size(self) -> int:
        return (self.high - self.low) // self.step + 1

    def grid_values(self) -> list[int]:
        return list(range(self.low, self.high + 1, self.step))


class CategoricalParam(_Spec):
    """One of ``choices`` (strings, numbers, booleans or null)."""

    type: Literal["categorical"]
    choices: list[ChoiceValue]
    when: dict[str, list[Any]] | None = None

    @field_validator("choices", mode="before")
    @classmethod
    def _choice_types(cls, value: Any) -> Any:
        if isinstance(value, list):
            for i, choice in enumerate(value):
                if choice is not None and not isinstance(choice, str | int | float | bool):
                    _raise_at(
                        (i,),
                        f"A choice is a string, a number, true/false or null, not {choice!r}.",
                        choice,
                    )
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = _Problems("CategoricalParam")
        if not self.choices:
            problems.add(("choices",), "choices needs at least one value.", self.choices)
        for j, value in enumerate(self.choices):
            if any(value == earlier for earlier in self.choices[:j]):
                problems.add(
                    ("choices", j),
                    f"choices must be distinct, but {value!r} appears twice "
                    "(1, 1.0 and true count as the same value).",
                    value,
                )
        _check_when(self.when, problems)
        problems.raise_if_any()
        return self

    def grid_size(self) -> int:
        return len(self.choices)

    def grid_values(self) -> list[ChoiceValue]:
        return list(self.choices)


ParamSpec = Annotated[FloatParam | IntParam | CategoricalParam, Discriminator("type")]
_PARAM_TYPES = ("float", "int", "categorical")


AnyParam = FloatParam | IntParam | CategoricalParam


def condition_holds(param: AnyParam, params: Mapping[str, Any]) -> bool:
    """Whether ``param`` applies given the values chosen so far (every ``when`` entry matches)."""
    if not param.when:
        return True
    return all(
        dep in params and any(params[dep] == v for v in values)
        for dep, values in param.when.items()
    )


def dependency_order(search_space: Mapping[str, AnyParam]) -> list[str]:
    """Parameter names with every parameter after those its ``when`` names, else in spec order."""
    order: list[str] = []
    placed: set[str] = set()
    pending = list(search_space)
    while pending:
        for name in pending:
            deps = search_space[name].when or {}
            if all(d in placed or d not in search_space for d in deps):
                order.append(name)
                placed.add(name)
                pending.remove(name)
                break
        else:
            raise ValueError(f"the conditions of {_listing(pending)} form a cycle")
    return order


def _find_cycle(search_space: Mapping[str, AnyParam]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for dep in search_space[name].when or {}:
            if dep not in search_space:
                continue
            if state.get(dep) == 1:
                return [*path[path.index(dep):], dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        path.pop()
        state[name] = 2
        return None

    for name in search_space:
        if name not in state and (cycle := visit(name)):
            return cycle
    return None


# --- objective ----------------------------------------------------------------------------------


class ValidationSpec(_Spec):
    """How the built-in trainer holds out data: a ``fraction`` split, or ``k_folds`` folds.

    Give one of the two. ``fraction`` defaults to 0.2 when ``k_folds`` is not given and is None
    when it is, so a validated spec says which scheme it uses.
    """

    fraction: float | None = Field(None, gt=0, lt=1)
    stratify: bool = True
    seed: int = Field(0, ge=0)
    k_folds: int | None = Field(None, ge=2, le=100)

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
            self.fraction = 0.2
        return self


class LRScalingSpec(_Spec):
    """Linear scaling rule: lr is multiplied by batch_size / base_batch_size."""

    rule: Literal["linear"]
    base_batch_size: int = Field(gt=0)


class ObjectiveSpec(_Spec):
    """What a trial computes: the built-in trainer or a registered entry point, and its metric(s).

    One metric (``metric: val_accuracy``, ``direction: maximize``) or several for a
    multi-objective study (``metric: [val_accuracy, epoch_time_s]``,
    ``direction: [maximize, minimize]``, same length). For the built-in trainer ``task`` and
    ``model`` are filled in when left out.
    """

    builtin: Literal["classifier", "regressor"] | None = None
    entrypoint: str | None = Field(None, max_length=200)
    dataset: str | None = Field(None, min_length=1, max_length=1000)
    dataset_options: dict[str, Any] | None = None
    target: str = Field("target", min_length=1, max_length=200)
    task: Literal["classification", "regression"] | None = None
    model: str | None = None
    metric: str | list[str]
    direction: Direction | list[Direction]
    max_epochs: int = Field(20, ge=1, le=10_000)
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    lr_scaling: LRScalingSpec | None = None

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
        if self.builtin is None and self.entrypoint is None:
            problems.add(
                (),
                "Give either builtin (classifier or regressor) or entrypoint (the name of an "
                "objective registered under tuneboard.objectives).",
            )
        elif self.builtin is not None and self.entrypoint is not None:
            problems.add(("entrypoint",), "Give builtin or entrypoint, not both.", self.entrypoint)
        elif self.builtin is not None:
            self._check_builtin(problems)
        self._check_metric_shape(problems)
        problems.raise_if_any()
        return self

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


# --- sampler and pruner -------------------------------------------------------------------------


class _TPEOptions(_Spec):
    n_startup_trials: int | None = Field(None, ge=0)
    n_ei_candidates: int | None = Field(None, ge=1)
    constant_liar: bool | None = None


class _CmaEsOptions(_Spec):
    n_startup_trials: int | None = Field(None, ge=0)
    sigma0: float | None = Field(None, gt=0)
    popsize: int | None = Field(None, ge=1)
    use_separable_cma: bool | None = None
    consider_pruned_trials: bool | None = None


class _GPOptions(_Spec):
    n_startup_trials: int | None = Field(None, ge=0)
    deterministic_objective: bool | None = None


class _QMCOptions(_Spec):
    qmc_type: Literal["sobol", "halton"] | None = None
    scramble: bool | None = None


class _NSGA2Options(_Spec):
    population_size: int | None = Field(None, ge=2)
    mutation_prob: float | None = Field(None, ge=0, le=1)
    crossover_prob: float | None = Field(None, ge=0, le=1)
    swapping_prob: float | None = Field(None, ge=0, le=1)


class _NoOptions(_Spec):
    pass


_SAMPLER_OPTIONS: dict[str, type[_Spec]] = {
    "random": _NoOptions,
    "grid": _NoOptions,
    "tpe": _TPEOptions,
    "cmaes": _CmaEsOptions,
    "gp": _GPOptions,
    "qmc": _QMCOptions,
    "nsga2": _NSGA2Options,
}


class SamplerSpec(_Spec):
    """Which Optuna sampler proposes parameters, its seed, and its options.

    ``options`` by type: tpe: n_startup_trials, n_ei_candidates, constant_liar; cmaes:
    n_startup_trials, sigma0, popsize, use_separable_cma, consider_pruned_trials; gp:
    n_startup_trials, deterministic_objective; qmc: qmc_type (sobol, halton), scramble; nsga2:
    population_size, mutation_prob, crossover_prob, swapping_prob; random and grid: none.
    Options left out keep Optuna's defaults.
    """

    type: str = Field(json_schema_extra={"enum": list(catalog.SAMPLERS)})
    seed: int | None = Field(None, ge=0, lt=2**32)
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in catalog.SAMPLERS:
            raise _error(
                "unknown_name",
                f"Unknown sampler {value!r}; valid samplers: {_listing(catalog.SAMPLERS)}.",
            )
        return value

    @model_validator(mode="after")
    def _check_options(self) -> Self:
        model = _SAMPLER_OPTIONS[self.type]
        problems = _Problems("SamplerSpec")
        valid = list(model.model_fields)
        for key in self.options:
            if key not in model.model_fields:
                takes = f"its options: {_listing(valid)}" if valid else "it takes no options"
                problems.add(
                    ("options", key),
                    f"The {self.type} sampler has no option {key!r}; {takes}.",
                    self.options[key],
                )
        problems.raise_if_any()
        try:
            self.options = model.model_validate(self.options).model_dump(exclude_none=True)
        except ValidationError as exc:
            problems.extend(exc, ("options",))
            problems.raise_if_any()
        return self


_PRUNER_FIELDS: dict[str, tuple[str, ...]] = {
    "none": (),
    "median": ("n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials"),
    "percentile": (
        "percentile", "n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials",
    ),
    "successive_halving": ("min_resource", "reduction_factor", "min_early_stopping_rate"),
    "hyperband": ("min_resource", "max_resource", "reduction_factor"),
    "threshold": ("lower", "upper", "n_warmup_steps", "interval_steps"),
    "patience": (
        "patience", "min_delta", "wrapped", "n_startup_trials", "n_warmup_steps",
        "interval_steps", "n_min_trials",
    ),
    "wilcoxon": ("p_threshold", "n_startup_steps"),
}


class PrunerSpec(_Spec):
    """Which Optuna pruner stops unpromising trials, with the options its type takes.

    median / percentile: n_startup_trials, n_warmup_steps, interval_steps, n_min_trials
    (percentile also ``percentile``, required); successive_halving: min_resource (int or
    'auto'), reduction_factor, min_early_stopping_rate; hyperband: min_resource, max_resource
    (int or 'auto': the objective's max_epochs), reduction_factor; threshold: lower and/or
    upper, n_warmup_steps, interval_steps; patience: patience (required), min_delta, wrapped
    (median, the default, or none) and the median options for the wrapped pruner; wilcoxon:
    p_threshold, n_startup_steps. Unset options keep Optuna's defaults.
    """

    type: str = Field(json_schema_extra={"enum": list(catalog.PRUNERS)})
    n_startup_trials: int | None = Field(None, ge=0)
    n_warmup_steps: int | None = Field(None, ge=0)
    interval_steps: int | None = Field(None, ge=1)
    n_min_trials: int | None = Field(None, ge=1)
    percentile: float | None = Field(None, ge=0, le=100)
    min_resource: int | Literal["auto"] | None = None
    max_resource: int | Literal["auto"] | None = None
    reduction_factor: int | None = Field(None, ge=2)
    min_early_stopping_rate: int | None = Field(None, ge=0)
    lower: float | None = None
    upper: float | None = None
    patience: int | None = Field(None, ge=0)
    min_delta: float | None = Field(None, ge=0)
    wrapped: Literal["median", "none"] | None = None
    p_threshold: float | None = Field(None, ge=0, le=1)
    n_startup_steps: int | None = Field(None, ge=0)

    @field_validator("min_resource", "max_resource", mode="before")
    @classmethod
    def _resource(cls, value: Any) -> Any:
        steps = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        if value is not None and value != "auto" and not steps:
            _raise_at((), f"Give a number of steps (at least 1) or 'auto', not {value!r}.", value)
        return value

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in catalog.PRUNERS:
            raise _error(
                "unknown_name",
                f"Unknown pruner {value!r}; valid pruners: {_listing(catalog.PRUNERS)}.",
            )
        return value

    def options(self) -> dict[str, Any]:
        """The options given for this pruner (those that were set)."""
        return {
            k: v for k, v in self.model_dump(exclude={"type"}).items() if v is not None
        }

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = _Problems("PrunerSpec")
        takes = _PRUNER_FIELDS[self.type]
        for key, value in self.options().items():
            if key not in takes:
                listing = f"it takes: {_listing(takes)}" if takes else "it takes no options"
                problems.add(
                    (key,), f"{key} does not apply to the {self.type} pruner; {listing}.", value
                )
        if self.type == "percentile" and self.percentile is None:
            problems.add(
                ("percentile",), "The percentile pruner needs percentile (0 to 100), e.g. 25."
            )
        if self.type == "patience" and self.patience is None:
            problems.add(
                ("patience",),
                "The patience pruner needs patience: how many steps without improvement to allow.",
            )
        if self.type == "patience" and self.wrapped == "none":
            for key in ("n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials"):
                if getattr(self, key) is not None:
                    problems.add(
                        (key,), f"{key} configures the wrapped median pruner; wrapped is none.",
                    )
        if self.type == "threshold":
            if self.lower is None and self.upper is None:
                problems.add((), "The threshold pruner needs lower, upper or both.")
            elif self.lower is not None and self.upper is not None and self.lower >= self.upper:
                problems.add(("upper",), "lower must be less than upper.", self.upper)
        if self.type == "hyperband" and self.min_resource == "auto":
            problems.add(
                ("min_resource",), "hyperband needs min_resource as a number of steps.", "auto"
            )
        if (
            isinstance(self.min_resource, int)
            and isinstance(self.max_resource, int)
            and self.min_resource >= self.max_resource
        ):
            problems.add(("max_resource",), "min_resource must be less than max_resource.")
        problems.raise_if_any()
        return self


# --- trainer options ----------------------------------------------------------------------------


def _resolve_mode(monitor: str, mode: Literal["min", "max", "auto"]) -> Literal["min", "max"]:
    if mode != "auto":
        return mode
    return "max" if catalog.better_direction(monitor) == "maximize" else "min"


class EarlyStoppingSpec(_Spec):
    """Stop a trial once ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    ``mode: auto`` follows the metric's name (losses, errors: min; accuracy, f1, auc, r2: max)
    and is refused for a metric whose better side the name does not tell; see ``resolved_mode``.
    """

    monitor: str = Field("val_loss", min_length=1, max_length=200)
    mode: Literal["min", "max", "auto"] = "auto"
    patience: int = Field(5, ge=0)
    min_delta: float = Field(0.0, ge=0)
    restore_best: bool = True

    @property
    def resolved_mode(self) -> Literal["min", "max"]:
        return _resolve_mode(self.monitor, self.mode)


CheckpointKind = Literal["latest", "best"]


def _keep_latest() -> list[CheckpointKind]:
    return ["latest"]


class CheckpointSpec(_Spec):
    """Which checkpoints to keep: ``latest`` (to resume a retried trial) and/or ``best``."""

    keep: list[CheckpointKind] = Field(default_factory=_keep_latest, min_length=1)
    monitor: str = Field("val_loss", min_length=1, max_length=200)
    mode: Literal["min", "max", "auto"] = "auto"

    @field_validator("keep")
    @classmethod
    def _distinct(cls, value: list[CheckpointKind]) -> list[CheckpointKind]:
        if len(set(value)) != len(value):
            raise _error("invalid_choices", "keep lists latest and best at most once each.")
        return value

    @property
    def resolved_mode(self) -> Literal["min", "max"]:
        return _resolve_mode(self.monitor, self.mode)


_LR_SCHEDULE_FIELDS: dict[str, tuple[str, ...]] = {
    "constant": (),
    "step": ("step_size", "gamma"),
    "cosine": ("min_lr",),
    "linear": ("min_lr",),
    "inverse_sqrt": (),
    "reduce_on_plateau": ("factor", "patience", "min_lr", "monitor"),
}


class LRScheduleSpec(_Spec):
    """The learning-rate schedule after ``warmup_epochs`` of linear warm-up.

    step: step_size, gamma (when left out, the trainer's step_size and gamma parameters apply,
    which may also be tuned); cosine / linear: min_lr; reduce_on_plateau: factor, patience,
    min_lr, monitor (default val_loss).
    """

    type: str = Field(json_schema_extra={"enum": list(catalog.LR_SCHEDULES)})
    warmup_epochs: int = Field(0, ge=0)
    step_size: int | None = Field(None, ge=1)
    gamma: float | None = Field(None, gt=0, le=1)
    factor: float | None = Field(None, gt=0, lt=1)
    patience: int | None = Field(None, ge=0)
    min_lr: float | None = Field(None, ge=0)
    monitor: str | None = Field(None, min_length=1, max_length=200)

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in catalog.LR_SCHEDULES:
            raise _error(
                "unknown_name",
                f"Unknown lr schedule {value!r}; valid schedules: "
                f"{_listing(catalog.LR_SCHEDULES)}.",
            )
        return value

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems = _Problems("LRScheduleSpec")
        takes = _LR_SCHEDULE_FIELDS[self.type]
        for key in ("step_size", "gamma", "factor", "patience", "min_lr", "monitor"):
            value = getattr(self, key)
            if value is not None and key not in takes:
                listing = f"it takes: {_listing(takes)}" if takes else "it takes only warmup_epochs"
                problems.add(
                    (key,), f"{key} does not apply to the {self.type} schedule; {listing}.", value
                )
        problems.raise_if_any()
        return self


class CallbacksSpec(_Spec):
    """Trainer callbacks: TerminateOnNaN, ModelCheckpoint and the LR schedule (constant if None)."""

    terminate_on_nan: bool = True
    checkpoint: CheckpointSpec | None = Field(default_factory=CheckpointSpec)
    lr_schedule: LRScheduleSpec | None = None


# --- budget, resources --------------------------------------------------------------------------


class BudgetSpec(_Spec):
    """How much a study may spend; enforced in the database."""

    n_trials: int = Field(ge=1, le=100_000)
    max_parallel: int = Field(1, ge=1, le=1000)
    timeout_s: float | None = Field(None, gt=0)
    max_failed: int = Field(10, ge=0)
    max_retries: int = Field(2, ge=0, le=10)


class ResourcesSpec(_Spec):
    """Where trials run: a worker queue, and a device (``auto``: cuda when the worker has one)."""

    queue: str = Field("default", min_length=1, max_length=64)
    device: str = "auto"

    @field_validator("queue")
    @classmethod
    def _queue(cls, value: str) -> str:
        if not _QUEUE_RE.match(value):
            raise _error(
                "invalid_name",
                f"{value!r} is not a queue name; use lower-case letters, digits, '_' and '-'.",
            )
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not _DEVICE_RE.match(value):
            raise _error(
                "invalid_name",
                f"{value!r} is not a device; use auto, cpu, cuda or cuda:N (e.g. cuda:0).",
            )
        return value


class OverrideSpec(_Spec):
    """Why this study may leave its standard's rules; recorded in the audit log."""

    reason: str = Field(max_length=2000)

    @field_validator("reason")
    @classmethod
    def _said(cls, value: str) -> str:
        if not value.strip():
            raise _error("missing_reason", "Say why the standard is overridden.")
        return value.strip()


# --- the study ----------------------------------------------------------------------------------

EXAMPLE_SPEC: dict[str, Any] = {
    "name": "digits-mlp",
    "objective": {
        "builtin": "classifier",
        "dataset": "digits",
        "model": "mlp",
        "metric": "val_accuracy",
        "direction": "maximize",
        "max_epochs": 50,
        "validation": {"fraction": 0.2, "stratify": True, "seed": 0},
    },
    "search_space": {
        "lr": {"type": "float", "low": 1.0e-5, "high": 1.0e-1, "log": True},
        "optimizer": {
            "type": "categorical",
            "choices": list(catalog.OPTIMIZERS),
        },
        "momentum": {
            "type": "float",
            "low": 0.8,
            "high": 0.99,
            "when": {"optimizer": ["momentum", "nesterov"]},
        },
        "batch_size": {"type": "int", "low": 16, "high": 256, "log": True},
        "hidden": {"type": "int", "low": 32, "high": 512, "step": 32},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
    },
    "fixed": {"weight_decay": 0.0},
    "sampler": {"type": "tpe", "seed": 42},
    "pruner": {"type": "hyperband"},
    "early_stopping": {"monitor": "val_loss", "mode": "min", "patience": 5, "min_delta": 0.0},
    "callbacks": {
        "terminate_on_nan": True,
        "checkpoint": {"keep": ["latest", "best"], "monitor": "val_loss"},
        "lr_schedule": {"type": "cosine", "warmup_epochs": 1},
    },
    "budget": {
        "n_trials": 100, "max_parallel": 4, "timeout_s": 3600, "max_failed": 10, "max_retries": 2,
    },
    "resources": {"queue": "default", "device": "auto"},
}


class StudySpec(_Spec):
    """A study: the objective, what to tune (``search_space``) and hold (``fixed``), how to search.

    ``pruner`` None means no pruning (as does ``type: none``); a multi-objective study cannot
    prune. ``early_stopping`` None means the trainer runs every epoch up to max_epochs.
    """

    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [EXAMPLE_SPEC]}
    )

    name: str = Field(min_length=1, max_length=200)
    standard: str | None = Field(None, max_length=250)
    objective: ObjectiveSpec
    search_space: dict[str, ParamSpec]
    fixed: dict[str, Any] = Field(default_factory=dict)
    sampler: SamplerSpec = Field(default_factory=lambda: SamplerSpec(type="tpe"))
    pruner: PrunerSpec | None = None
    early_stopping: EarlyStoppingSpec | None = None
    callbacks: CallbacksSpec = Field(default_factory=CallbacksSpec)
    budget: BudgetSpec
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    override: OverrideSpec | None = None
    description: str | None = Field(None, max_length=10_000)
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=50
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise _error(
                "invalid_name",
                f"{value!r} is not a study name; use letters, digits, '_', '.' and '-'.",
            )
        return value

    @field_validator("standard")
    @classmethod
    def _standard(cls, value: str | None) -> str | None:
        if value is not None and not _STANDARD_RE.match(value):
            raise _error(
                "invalid_name",
                f"{value!r} is not a standard reference; use its name (the latest active "
                "version) or name@N (version N), e.g. vision-baseline@3.",
            )
        return value

    @field_validator("search_space", mode="wrap")
    @classmethod
    def _locate_param_errors(
        cls, value: Any, handler: ValidatorFunctionWrapHandler
    ) -> dict[str, AnyParam]:
        # The tagged union puts the tag in ``loc`` (lr, float, high); the spec has no such level.
        try:
            validated: dict[str, AnyParam] = handler(value)
        except ValidationError as exc:
            problems = _Problems("StudySpec")
            for err in exc.errors():
                loc = tuple(err["loc"])
                if len(loc) == 1 and not isinstance(err["input"], dict):
                    problems.add(
                        loc,
                        "Describe a parameter as an object with a type (float, int or "
                        "categorical), e.g. {type: float, low: 0.0, high: 1.0}.",
                        err["input"],
                        "invalid_param_type",
                    )
                    continue
                if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
                    given = err["input"].get("type")
                    problems.add(
                        (*loc, "type"),
                        "A parameter's type must be float, int or categorical"
                        + (f", not {given!r}." if given is not None else "."),
                        given,
                        "invalid_param_type",
                    )
                    continue
                if len(loc) >= 2 and loc[1] in _PARAM_TYPES:
                    loc = loc[:1] + loc[2:]
                problems.add(loc, err["msg"], err.get("input"), err["type"])
            problems.raise_if_any()
            raise
        return validated

    @property
    def metrics(self) -> list[str]:
        return self.objective.metrics

    @property
    def directions(self) -> list[Direction]:
        return self.objective.directions

    @property
    def is_multi_objective(self) -> bool:
        return self.objective.is_multi_objective

    @model_validator(mode="after")
    def _cross_checks(self) -> Self:
        problems = _Problems("StudySpec")
        self._check_names(problems)
        self._check_conditions(problems)
        self._check_multi_objective(problems)
        if self.objective.builtin is not None:
            self._check_builtin(problems)
        self._check_monitors(problems)
        if self.sampler.type == "grid":
            self._check_grid(problems)
        schedule = self.callbacks.lr_schedule
        if schedule is not None and schedule.warmup_epochs >= self.objective.max_epochs:
            problems.add(
                ("callbacks", "lr_schedule", "warmup_epochs"),
                f"warmup_epochs ({schedule.warmup_epochs}) must be less than max_epochs "
                f"({self.objective.max_epochs}).",
                schedule.warmup_epochs,
            )
        self._check_pruner_resources(problems)
        if self.override is not None and self.standard is None:
            problems.add(
                ("override",), "override only applies to a study that names a standard."
            )
        problems.raise_if_any()
        return self

    def _check_pruner_resources(self, problems: _Problems) -> None:
        pruner = self.pruner
        if pruner is None or pruner.type not in ("hyperband", "successive_halving"):
            return
        max_epochs = self.objective.max_epochs
        min_resource = pruner.min_resource if isinstance(pruner.min_resource, int) else 1
        if min_resource >= max_epochs:
            problems.add(
                ("pruner", "min_resource"),
                f"min_resource ({min_resource}) must be less than the objective's max_epochs "
                f"({max_epochs}), or no trial could be stopped early.",
                pruner.min_resource,
            )
        if isinstance(pruner.max_resource, int) and pruner.max_resource > max_epochs:
            problems.add(
                ("pruner", "max_resource"),
                f"max_resource ({pruner.max_resource}) cannot exceed the objective's max_epochs "
                f"({max_epochs}); leave it out to use max_epochs.",
                pruner.max_resource,
            )

    def _check_names(self, problems: _Problems) -> None:
        if not self.search_space:
            problems.add(("search_space",), "search_space needs at least one parameter to tune.")
        for section, names in (("search_space", self.search_space), ("fixed", self.fixed)):
            for name in names:
                if not _IDENTIFIER_RE.match(name) or len(name) > 100:
                    problems.add(
                        (section, name),
                        f"{name!r} is not a parameter name; use letters, digits and '_', "
                        "not starting with a digit (at most 100 characters).",
                    )
        for name in self.fixed:
            if name in self.search_space:
                problems.add(
                    ("fixed", name),
                    f"{name} is both tuned (search_space) and fixed; keep one of the two.",
                    self.fixed[name],
                )

    def _check_conditions(self, problems: _Problems) -> None:
        ok = True
        for name, param in self.search_space.items():
            for dep, values in (param.when or {}).items():
                loc: Loc = ("search_space", name, "when", dep)
                target = self.search_space.get(dep)
                if dep == name:
                    problems.add(loc, f"{name} cannot be conditional on itself.")
                    ok = False
                elif target is None:
                    where = (
                        f"; {dep} is fixed, so drop the condition"
                        if dep in self.fixed
                        else f". Parameters: {_listing(self.search_space)}"
                    )
                    problems.add(
                        loc,
                        f"{name} is conditional on {dep!r}, which is not a parameter of the "
                        f"search space{where}.",
                        dep,
                    )
                    ok = False
                elif not isinstance(target, CategoricalParam):
                    problems.add(
                        loc,
                        f"Conditions can only name categorical parameters; {dep} is "
                        f"{target.type}.",
                        dep,
                    )
                    ok = False
                else:
                    for i, value in enumerate(values):
                        if not any(value == c for c in target.choices):
                            problems.add(
                                (*loc, i),
                                f"{value!r} is not among the choices of {dep} "
                                f"({_listing(repr(c) for c in target.choices)}).",
                                value,
                            )
        if ok and (cycle := _find_cycle(self.search_space)):
            problems.add(
                ("search_space", cycle[0], "when"),
                f"The conditions form a cycle: {' -> '.join(cycle)}.",
            )

    def _check_multi_objective(self, problems: _Problems) -> None:
        if not self.is_multi_objective:
            return
        if self.pruner is not None and self.pruner.type != "none":
            problems.add(
                ("pruner",),
                f"Pruning needs a single objective, and this study optimises "
                f"{len(self.metrics)} ({_listing(self.metrics)}); remove the pruner.",
                self.pruner.type,
                "unsupported",
            )
        if self.sampler.type not in MULTI_OBJECTIVE_SAMPLERS:
            problems.add(
                ("sampler", "type"),
                f"The {self.sampler.type} sampler optimises a single objective; with several "
                f"metrics use one of {_listing(MULTI_OBJECTIVE_SAMPLERS)}.",
                self.sampler.type,
                "unsupported",
            )

    def _check_builtin(self, problems: _Problems) -> None:
        known = list(catalog.TRAINER_PARAM_DEFAULTS)
        listing = f" Its parameters: {_listing(known)}."
        for section, names in (("search_space", self.search_space), ("fixed", self.fixed)):
            for name in names:
                if name not in catalog.TRAINER_PARAM_DEFAULTS:
                    problems.add(
                        (section, name),
                        f"The built-in trainer has no parameter {name!r}."
                        f"{_did_you_mean(name, known)}{listing}",
                        name,
                        "unknown_name",
                    )
        for name, param in self.search_space.items():
            if name in catalog.TRAINER_PARAM_DEFAULTS:
                _check_trainer_param(name, param, problems)
        for name, value in self.fixed.items():
            if name in catalog.TRAINER_PARAM_DEFAULTS:
                reason = _trainer_value_problem(name, value)
                if reason:
                    problems.add(("fixed", name), reason, value)
        image = self.objective.dataset in catalog.IMAGE_DATASETS
        cutmix_on = "cutmix_alpha" in self.search_space or self.fixed.get("cutmix_alpha", 0)
        if cutmix_on and not image:
            section = "search_space" if "cutmix_alpha" in self.search_space else "fixed"
            problems.add(
                (section, "cutmix_alpha"),
                f"cutmix needs image-shaped data ({_listing(sorted(catalog.IMAGE_DATASETS))}).",
            )
        schedule = self.callbacks.lr_schedule
        if schedule is not None:
            for key in ("step_size", "gamma"):
                given = getattr(schedule, key)
                if given is not None and (key in self.search_space or key in self.fixed):
                    problems.add(
                        ("callbacks", "lr_schedule", key),
                        f"{key} is set here and as a parameter; set it in one place.",
                        given,
                    )

    def _check_monitors(self, problems: _Problems) -> None:
        reported = self.objective.reported_metrics()
        monitors: list[tuple[Loc, str, str | None]] = []
        if self.early_stopping is not None:
            es = self.early_stopping
            monitors.append((("early_stopping",), es.monitor, es.mode))
        if self.callbacks.checkpoint is not None:
            cp = self.callbacks.checkpoint
            monitors.append((("callbacks", "checkpoint"), cp.monitor, cp.mode))
        schedule = self.callbacks.lr_schedule
        if schedule is not None and schedule.monitor is not None:
            monitors.append((("callbacks", "lr_schedule"), schedule.monitor, None))
        for loc, monitor, mode in monitors:
            if reported is not None and monitor not in reported:
                problems.add(
                    (*loc, "monitor"),
                    f"The built-in trainer does not report {monitor!r}."
                    f"{_did_you_mean(monitor, sorted(reported))} "
                    f"It reports: {_listing(sorted(reported))}.",
                    monitor,
                    "unknown_metric",
                )
            elif mode == "auto" and catalog.better_direction(monitor) is None:
                problems.add(
                    (*loc, "mode"),
                    f"Cannot tell whether {monitor} is better low or high; set mode to min or max.",
                    mode,
                )

    def _check_grid(self, problems: _Problems) -> None:
        size = 1
        for name, param in self.search_space.items():
            count = param.grid_size()
            if count is None:
                problems.add(
                    ("search_space", name, "step"),
                    f"The grid sampler needs a finite set of values: give {name} a step or make "
                    "it categorical.",
                )
                return
            size *= count
        if size > MAX_GRID_SIZE:
            problems.add(
                ("search_space",),
                f"The grid has {size:,} points; at most {MAX_GRID_SIZE:,} are allowed.",
            )


def _trainer_value_problem(name: str, value: Any) -> str | None:
    """Why ``value`` is not valid for the trainer's parameter ``name``, or None."""
    choices = catalog.PARAM_CHOICES.get(name)
    if choices is not None:
        if isinstance(value, str) and value in choices:
            return None
        hint = _did_you_mean(value, choices) if isinstance(value, str) else ""
        return f"Unknown {name} {value!r}.{hint} Valid: {_listing(choices)}."
    if name in catalog.INTEGER_PARAMS:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{name} must be a whole number, not {value!r}."
    elif isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} must be a number, not {value!r}."
    bounds = catalog.PARAM_BOUNDS.get(name)
    if bounds is not None and not bounds.contains(value):
        return f"{name} must be {bounds.describe()}, not {value:g}."
    return None


def _check_trainer_param(
    name: str, param: AnyParam, problems: _Problems
) -> None:
    loc: Loc = ("search_space", name)
    if isinstance(param, CategoricalParam):
        for i, choice in enumerate(param.choices):
            reason = _trainer_value_problem(name, choice)
            if reason:
                problems.add((*loc, "choices", i), reason, choice)
        return
    if name in catalog.PARAM_CHOICES:
        problems.add(
            (*loc, "type"),
            f"{name} takes a name ({_listing(catalog.PARAM_CHOICES[name])}); "
            "use type: categorical.",
            param.type,
        )
        return
    if name in catalog.INTEGER_PARAMS and isinstance(param, FloatParam):
        problems.add(
            (*loc, "type"), f"{name} must be a whole number; use type: int.", param.type
        )
        return
    bounds = catalog.PARAM_BOUNDS.get(name)
    if bounds is None:
        return
    for key, value in (("low", param.low), ("high", param.high)):
        if not bounds.contains(value):
            problems.add(
                (*loc, key), f"{name} must be {bounds.describe()}, but {key} is {value:g}.", value
            )


def canonical_hash(payload: Any) -> str:
    """sha256 of canonical JSON: equal documents hash equally whatever their key order."""
    canonical = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def spec_hash(spec: StudySpec) -> str:
    return canonical_hash(spec.model_dump(mode="json"))
