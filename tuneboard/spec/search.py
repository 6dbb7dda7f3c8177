"""How a study searches: the Optuna sampler that proposes parameters and the pruner that stops
unpromising trials, each with the options its type takes."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import Field, ValidationError, field_validator, model_validator

from tuneboard.spec import catalog
from tuneboard.spec._problems import _error, _listing, _Problems, _raise_at, _Spec
from tuneboard.spec.scalars import JsonBool, JsonFloat, JsonInt

__all__ = [
    "CONSTRAINED_SAMPLERS",
    "MULTI_OBJECTIVE_SAMPLERS",
    "AcceptanceBound",
    "PrunerSpec",
    "SamplerSpec",
    "SearchSpec",
]

MULTI_OBJECTIVE_SAMPLERS: tuple[str, ...] = ("nsga2", "tpe", "gp", "random", "qmc", "grid")
# The samplers that take Optuna's ``constraints_func`` (``search.prefer_accepted``).
CONSTRAINED_SAMPLERS: tuple[str, ...] = ("tpe", "nsga2", "gp")


# ``options`` is a free-form object in the OpenAPI document, so the option models keep
# pydantic's lax reading ("5" is 5) where the spec's typed fields use the Json* types.
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
    seed: JsonInt | None = Field(None, ge=0, lt=2**32)
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
    n_startup_trials: JsonInt | None = Field(None, ge=0)
    n_warmup_steps: JsonInt | None = Field(None, ge=0)
    interval_steps: JsonInt | None = Field(None, ge=1)
    n_min_trials: JsonInt | None = Field(None, ge=1)
    percentile: JsonFloat | None = Field(None, ge=0, le=100)
    min_resource: int | Literal["auto"] | None = None
    max_resource: int | Literal["auto"] | None = None
    reduction_factor: JsonInt | None = Field(None, ge=2)
    min_early_stopping_rate: JsonInt | None = Field(None, ge=0)
    lower: JsonFloat | None = None
    upper: JsonFloat | None = None
    patience: JsonInt | None = Field(None, ge=0)
    min_delta: JsonFloat | None = Field(None, ge=0)
    wrapped: Literal["median", "none"] | None = None
    p_threshold: JsonFloat | None = Field(None, ge=0, le=1)
    n_startup_steps: JsonInt | None = Field(None, ge=0)

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


class AcceptanceBound(_Spec):
    """One metric acceptance criterion of the study's standard, as a sampler constraint."""

    metric: str = Field(min_length=1, max_length=200)
    op: Literal[">=", ">", "<=", "<", "=="]
    value: JsonFloat


class SearchSpec(_Spec):
    """How the search is steered beyond the sampler's own objective.

    ``prefer_accepted``: the sampler treats the standard's metric acceptance criteria as
    constraints (Optuna's ``constraints_func``), so it seeks trials the standard will accept.
    ``constraints`` is filled at admission from the pinned standard version's metric criteria
    (whatever a spec gives there is replaced), so every process that builds the sampler reads
    the same constraints from the stored spec.
    """

    prefer_accepted: JsonBool = False
    constraints: list[AcceptanceBound] = Field(default_factory=list, max_length=100)
