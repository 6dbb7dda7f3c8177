"""Optuna's ask for a trial already claimed in our store: what ``Study.ask`` does for an
enqueued trial, without its search for one. Workers (``workers.runner``) and the service that
hands trials to external clients (``tuneboard.studies.external``) both ask this way."""

from __future__ import annotations

from typing import Any

import optuna

from tuneboard.optimization.pruners import make_pruner
from tuneboard.optimization.samplers import make_sampler
from tuneboard.optimization.space import suggest_params
from tuneboard.optimization.storage import SqlStorage
from tuneboard.spec import StudySpec

__all__ = ["ask_claimed", "optuna_study"]


def optuna_study(storage: SqlStorage, name: str, spec: StudySpec, number: int) -> optuna.Study:
    """The Optuna study ``name`` with the spec's pruner and its sampler, seeded for trial
    ``number`` (each trial's own seed, so that parallel trials don't sample alike)."""
    return optuna.Study(
        study_name=name,
        storage=storage,
        sampler=make_sampler(spec.sampler, spec.search_space, n_objectives=len(spec.metrics),
                             trial_seed_offset=number, search=spec.search),
        pruner=make_pruner(spec.pruner, max_steps=spec.objective.max_epochs),
    )


def ask_claimed(
    storage: SqlStorage, study: optuna.Study, trial_id: int, spec: StudySpec
) -> tuple[optuna.trial.Trial, dict[str, Any]]:
    """The claimed trial and its parameters, the spec's ``fixed`` values included. Optuna's
    ``Trial`` applies ``system_attrs["fixed_params"]`` and calls the sampler's ``before_trial``
    itself; the suggestions are written in one transaction (``SqlStorage.params_together``),
    so asked again after an outage it finds all of them stored, or none."""
    trial = optuna.trial.Trial(study, trial_id)
    with storage.params_together(trial_id):
        params = suggest_params(trial, spec.search_space)
    return trial, {**params, **spec.fixed}
