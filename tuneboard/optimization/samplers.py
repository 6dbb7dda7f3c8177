"""Optuna samplers from a spec's ``sampler`` section.

Trials are asked in many worker processes, each building a fresh sampler for the trial it
runs. Seeded with the spec's seed alone, every process would propose the same point. So most
samplers are seeded with ``seed + trial_seed_offset`` (the worker passes the trial number):
a study is reproducible trial by trial, and its trials differ.

Two samplers keep the spec's seed as given, because every process must agree on it:

- grid: the seed fixes the order of the grid, and a trial's point is looked up by its index in
  that order (trial n gets the n-th point), so different seeds would repeat and skip points;
- qmc: the seed scrambles the sequence, whose index is kept in the study, so trials still differ.
  Parameters outside the sequence (conditional ones) come from a random sampler with the offset
  seed. With no seed in the spec, qmc uses 0.

Without a seed every other sampler draws fresh entropy in each process.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.samplers import (
    BaseSampler,
    CmaEsSampler,
    GPSampler,
    GridSampler,
    NSGAIISampler,
    QMCSampler,
    RandomSampler,
    TPESampler,
)
from optuna.trial import FrozenTrial, TrialState

from tuneboard.optimization.constraints import constraints_func
from tuneboard.optimization.space import grid_search_space
from tuneboard.spec import (
    CONSTRAINED_SAMPLERS,
    MULTI_OBJECTIVE_SAMPLERS,
    AnyParam,
    CategoricalParam,
    SamplerSpec,
    SearchSpec,
)

__all__ = ["make_sampler"]

_SEED_MODULUS = 2**32


class _GridSampler(GridSampler):
    """``GridSampler`` that also works with ask and tell.

    After each trial it calls ``study.stop()`` once the grid is done, which raises outside
    ``study.optimize``; the workers use ask and tell, and end the study by its budget or by
    ``is_exhausted``.
    """

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        with contextlib.suppress(RuntimeError):
            super().after_trial(study, trial, state, values)


def make_sampler(
    spec: SamplerSpec,
    search_space: Mapping[str, AnyParam],
    *,
    n_objectives: int,
    trial_seed_offset: int = 0,
    search: SearchSpec | None = None,
) -> BaseSampler:
    """The sampler ``spec`` describes, for a study over ``search_space`` with ``n_objectives``.

    ``trial_seed_offset`` must differ between trials (the trial number will do); see the module
    docstring for which samplers use it. Raises ValueError for a combination the spec validation
    refuses too (cmaes with several objectives, grid over a continuous parameter, constraints
    for a sampler that takes none). ``search`` with ``prefer_accepted``: the sampler's
    ``constraints_func`` is built from ``search.constraints`` (``optimization.constraints``).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        # Optuna 5 deprecates constraints_func for Trial.set_constraint, which only the code
        # running the trial can call; the constraints here come from the stored spec instead.
        warnings.filterwarnings("ignore", "`constraints_func` has been deprecated", FutureWarning)
        return _build(spec, search_space, n_objectives, trial_seed_offset, search)


def _build(
    spec: SamplerSpec,
    search_space: Mapping[str, AnyParam],
    n_objectives: int,
    trial_seed_offset: int,
    search: SearchSpec | None = None,
) -> BaseSampler:
    if n_objectives > 1 and spec.type not in MULTI_OBJECTIVE_SAMPLERS:
        raise ValueError(f"the {spec.type} sampler supports a single objective only")
    seed = None if spec.seed is None else (spec.seed + trial_seed_offset) % _SEED_MODULUS
    options: dict[str, Any] = dict(spec.options)
    if search is not None and search.prefer_accepted:
        if spec.type not in CONSTRAINED_SAMPLERS:
            raise ValueError(f"the {spec.type} sampler takes no constraints")
        options["constraints_func"] = constraints_func(search.constraints)
    conditional = any(p.when for p in search_space.values())
    quiet = conditional or any(isinstance(p, CategoricalParam) for p in search_space.values())
    if spec.type == "random":
        return RandomSampler(seed=seed)
    if spec.type == "grid":
        return _GridSampler(grid_search_space(search_space), seed=spec.seed)
    if spec.type == "tpe":
        return TPESampler(seed=seed, multivariate=True, group=conditional, **options)
    if spec.type == "cmaes":
        return CmaEsSampler(
            seed=seed,
            independent_sampler=RandomSampler(seed=seed),
            warn_independent_sampling=not quiet,
            **options,
        )
    if spec.type == "gp":
        return GPSampler(seed=seed, warn_independent_sampling=not quiet, **options)
    if spec.type == "qmc":
        return QMCSampler(
            seed=spec.seed if spec.seed is not None else 0,
            independent_sampler=RandomSampler(seed=seed),
            warn_asynchronous_seeding=False,
            warn_independent_sampling=not quiet,
            **options,
        )
    if spec.type == "nsga2":
        return NSGAIISampler(seed=seed, **options)
    raise ValueError(f"unknown sampler {spec.type!r}")
