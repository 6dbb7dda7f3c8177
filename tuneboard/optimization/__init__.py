"""Optuna glue: search space, sampler and pruner factories, and the storage over our tables."""

from tuneboard.optimization.params import external_params
from tuneboard.optimization.pruners import make_pruner
from tuneboard.optimization.samplers import make_sampler
from tuneboard.optimization.space import (
    InvalidParamsError,
    grid_search_space,
    suggest_params,
    to_distribution,
    to_distributions,
    validate_fixed_params,
)
from tuneboard.optimization.storage import SqlStorage

__all__ = [
    "InvalidParamsError",
    "SqlStorage",
    "external_params",
    "grid_search_space",
    "make_pruner",
    "make_sampler",
    "suggest_params",
    "to_distribution",
    "to_distributions",
    "validate_fixed_params",
]
