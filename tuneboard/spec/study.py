"""The study spec: the JSON body of ``POST /api/v1/studies``, validated.

Every model rejects unknown keys. Every error is a sentence located at the field it is about:
``("search_space", "lr", "high")``, ``("budget", "n_trials")``, ``("pruner",)``. Checks that span
several fields run on the model that holds them all and report every problem at once.

A validated spec round-trips: ``StudySpec.model_validate(spec.model_dump(mode="json"))`` gives the
same spec, so the stored JSON can be validated again by the worker.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Self

from pydantic import (
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from tuneboard.spec import catalog
from tuneboard.spec._problems import Loc, _did_you_mean, _error, _listing, _Problems, _Spec
from tuneboard.spec.budget import BudgetSpec, ResourcesSpec
from tuneboard.spec.objective import Direction, ObjectiveSpec
from tuneboard.spec.refs import StandardRef
from tuneboard.spec.search import (
    CONSTRAINED_SAMPLERS,
    MULTI_OBJECTIVE_SAMPLERS,
    PrunerSpec,
    SamplerSpec,
    SearchSpec,
)
from tuneboard.spec.space import (
    _PARAM_TYPES,
    MAX_GRID_SIZE,
    AnyParam,
    CategoricalParam,
    ParamSpec,
    _find_cycle,
    _number_problem,
)
from tuneboard.spec.stopping import StoppingSpec
from tuneboard.spec.trainer import (
    TRAINER_PARAM_DEFAULTS,
    CallbacksSpec,
    EarlyStoppingSpec,
    _check_trainer_param,
    _trainer_value_problem,
)
from tuneboard.spec.warm_start import WarmStartSpec

__all__ = ["EXAMPLE_SPEC", "OverrideSpec", "StudySpec"]

_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PARAM_NAMES: dict[str, Any] = {
    "propertyNames": {"pattern": _IDENTIFIER_RE.pattern, "maxLength": 100}
}


class OverrideSpec(_Spec):
    """Why this study may leave its standard's rules; recorded in the audit log."""

    reason: str = Field(max_length=2000)

    @field_validator("reason")
    @classmethod
    def _said(cls, value: str) -> str:
        if not value.strip():
            raise _error("missing_reason", "Say why the standard is overridden.")
        return value.strip()


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

    name: str = Field(min_length=1, max_length=200, json_schema_extra={"pattern": _NAME_RE.pattern})
    standard: str | None = Field(None, max_length=250)
    objective: ObjectiveSpec
    search_space: dict[str, ParamSpec] = Field(json_schema_extra=_PARAM_NAMES)
    fixed: dict[str, Any] = Field(default_factory=dict, json_schema_extra=_PARAM_NAMES)
    sampler: SamplerSpec = Field(default_factory=lambda: SamplerSpec(type="tpe"))
    pruner: PrunerSpec | None = None
    early_stopping: EarlyStoppingSpec | None = None
    callbacks: CallbacksSpec = Field(default_factory=CallbacksSpec)
    budget: BudgetSpec
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    stopping: StoppingSpec | None = None
    warm_start: WarmStartSpec | None = None
    search: SearchSpec | None = None
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

    @field_validator("fixed")
    @classmethod
    def _finite_fixed(cls, value: dict[str, Any]) -> dict[str, Any]:
        # ``Any`` escapes allow_inf_nan: NaN, Infinity and 1e400 would be stored as null.
        problems = _Problems("StudySpec")
        for name, given in value.items():
            reason = _number_problem(given)
            if reason:
                problems.add((name,), reason, None, "invalid_number")
        problems.raise_if_any()
        return value

    @field_validator("standard")
    @classmethod
    def _standard(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            StandardRef.parse(value)
        except ValueError:
            raise _error(
                "invalid_name",
                f"{value!r} is not a standard reference; use its name (the latest active "
                "version) or name@N (version N), e.g. vision-baseline@3.",
            ) from None
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
        if self.objective.external:
            self._check_external(problems)
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
        if self.stopping is not None and self.is_multi_objective:
            problems.add(
                ("stopping",),
                "Stopping rules follow one best value; this study optimises "
                f"{len(self.metrics)} metrics ({_listing(self.metrics)}).",
                None,
                "unsupported",
            )
        if self.stopping is not None and self.stopping.terminator and self.objective.external:
            problems.add(
                ("stopping", "terminator"),
                "The terminator fits a Gaussian process wherever a trial is told, which for an "
                "external study is the API; use patience and min_delta instead.",
                None,
                "unsupported",
            )
        self._check_priors(problems)
        if self.override is not None and self.standard is None:
            problems.add(
                ("override",), "override only applies to a study that names a standard."
            )
        problems.raise_if_any()
        return self

    @property
    def prefers_accepted(self) -> bool:
        """The sampler steers by the standard's metric criteria (``search.prefer_accepted``)."""
        return self.search is not None and self.search.prefer_accepted

    def _check_priors(self, problems: _Problems) -> None:
        """``warm_start`` and ``search``: what a standard contributes to the search itself."""
        warm = self.warm_start
        if warm is not None and warm.from_studies and self.standard is None:
            problems.add(("warm_start", "from_studies"), "Warm starting from earlier studies "
                         "takes their accepted trials, which needs a standard; name one.")
        if warm is not None and self.sampler.type == "grid":
            problems.add(("warm_start",), "The grid sampler visits every point of its grid in "
                         "order; drop warm_start or use another sampler.", None, "unsupported")
        if warm is not None and self.objective.external:
            problems.add(("warm_start",), "An external study's trials are asked for by its "
                         "clients; drop warm_start.", None, "unsupported")
        search = self.search
        if search is None:
            return
        if search.constraints and not search.prefer_accepted:
            problems.add(("search", "constraints"), "constraints are filled in from the "
                         "standard when prefer_accepted is true; drop them.")
        if not search.prefer_accepted:
            return
        loc: Loc = ("search", "prefer_accepted")
        if self.standard is None:
            problems.add(loc, "prefer_accepted steers by a standard's acceptance criteria; "
                         "name a standard.", True)
        elif not search.constraints:
            problems.add(loc, f"The standard {self.standard} has no metric acceptance "
                         "criteria to steer by.", True)
        if self.sampler.type not in CONSTRAINED_SAMPLERS:
            problems.add(loc, f"The {self.sampler.type} sampler takes no constraints; use one "
                         f"of {_listing(CONSTRAINED_SAMPLERS)}.", True, "unsupported")

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

    def _check_external(self, problems: _Problems) -> None:
        # No worker of ours runs an external trial: what only a worker reads is refused.
        for key, default in (("early_stopping", None), ("callbacks", CallbacksSpec()),
                             ("resources", ResourcesSpec())):
            if getattr(self, key) != default:
                problems.add((key,), f"{key} is for trials our workers run; an external "
                             "objective runs its own code, so drop it.", None, "unsupported")

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
        known = list(TRAINER_PARAM_DEFAULTS)
        listing = f" Its parameters: {_listing(known)}."
        for section, names in (("search_space", self.search_space), ("fixed", self.fixed)):
            for name in names:
                if name not in TRAINER_PARAM_DEFAULTS:
                    problems.add(
                        (section, name),
                        f"The built-in trainer has no parameter {name!r}."
                        f"{_did_you_mean(name, known)}{listing}",
                        name,
                        "unknown_name",
                    )
        for name, param in self.search_space.items():
            if name in TRAINER_PARAM_DEFAULTS:
                _check_trainer_param(name, param, problems)
        for name, value in self.fixed.items():
            if name in TRAINER_PARAM_DEFAULTS:
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
        for name in catalog.IMAGE_AUGMENTATION_PARAMS:
            if not image and (name in self.search_space or self.fixed.get(name, 0)):
                problems.add(
                    ("search_space" if name in self.search_space else "fixed", name),
                    f"image augmentation needs image-shaped data "
                    f"({_listing(sorted(catalog.IMAGE_DATASETS))}).",
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
