from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from tuneboard.spec import (
    EXAMPLE_SPEC,
    CategoricalParam,
    FloatParam,
    IntParam,
    PrunerSpec,
    SamplerSpec,
    StudySpec,
    condition_holds,
    dependency_order,
    spec_hash,
)

Mutation = Callable[[dict[str, Any]], None]

ENTRYPOINT_SPEC: dict[str, Any] = {
    "name": "custom",
    "objective": {"entrypoint": "my-objective", "metric": "score", "direction": "maximize"},
    "search_space": {"x": {"type": "float", "low": -1.0, "high": 1.0}},
    "budget": {"n_trials": 10},
}


def put(path: str, value: Any) -> Mutation:
    keys = path.split(".")

    def apply(spec: dict[str, Any]) -> None:
        target = spec
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = value

    return apply


def drop(path: str) -> Mutation:
    keys = path.split(".")

    def apply(spec: dict[str, Any]) -> None:
        target = spec
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return apply


def both(*mutations: Mutation) -> Mutation:
    def apply(spec: dict[str, Any]) -> None:
        for mutate in mutations:
            mutate(spec)

    return apply


def errors_of(spec: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        StudySpec.model_validate(spec)
    return [dict(e) for e in info.value.errors()]


MULTI = both(
    put("objective.metric", ["val_accuracy", "epoch_time_s"]),
    put("objective.direction", ["maximize", "minimize"]),
)
CYCLE = both(
    put("search_space.norm", {
        "type": "categorical", "choices": ["none", "batch"], "when": {"activation": ["relu"]},
    }),
    put("search_space.activation", {
        "type": "categorical", "choices": ["relu", "gelu"], "when": {"norm": ["batch"]},
    }),
)
GRID = put("sampler", {"type": "grid"})

INVALID: list[Any] = [
    # parameters
    pytest.param(put("search_space.lr.low", 1.0), ("search_space", "lr", "high"),
                 "low must be less than high", id="float-low-above-high"),
    pytest.param(put("search_space.dropout.high", 0.0), ("search_space", "dropout", "high"),
                 "low must be less than high", id="float-low-equals-high"),
    pytest.param(put("search_space.hidden.low", 512), ("search_space", "hidden", "high"),
                 "low must be less than high", id="int-low-equals-high"),
    pytest.param(put("search_space.dropout.log", True), ("search_space", "dropout", "low"),
                 "log scale needs low > 0", id="float-log-low-zero"),
    pytest.param(put("search_space.batch_size.low", 0), ("search_space", "batch_size", "low"),
                 "log scale needs low >= 1", id="int-log-low-zero"),
    pytest.param(put("search_space.lr.step", 0.01), ("search_space", "lr", "step"),
                 "cannot be combined with log", id="float-log-and-step"),
    pytest.param(put("search_space.batch_size.step", 2), ("search_space", "batch_size", "step"),
                 "cannot be combined with log", id="int-log-and-step"),
    pytest.param(put("search_space.dropout.step", -0.1), ("search_space", "dropout", "step"),
                 "greater than 0", id="float-negative-step"),
    pytest.param(put("search_space.dropout.step", 0.15), ("search_space", "dropout", "step"),
                 "whole number of steps of 0.15; try high = 0.45", id="float-step-not-dividing"),
    pytest.param(put("search_space.hidden.step", 0), ("search_space", "hidden", "step"),
                 "at least 1", id="int-step-zero"),
    pytest.param(put("search_space.hidden.step", 100), ("search_space", "hidden", "step"),
                 "multiple of step (100); try high = 432", id="int-step-not-dividing"),
    pytest.param(put("search_space.optimizer.choices", []),
                 ("search_space", "optimizer", "choices"), "at least one value",
                 id="empty-choices"),
    pytest.param(put("search_space.optimizer.choices", ["sgd", "adam", "sgd"]),
                 ("search_space", "optimizer", "choices", 2), "'sgd' appears twice",
                 id="duplicate-choices"),
    pytest.param(put("search_space.lr.type", "double"), ("search_space", "lr", "type"),
                 "float, int or categorical, not 'double'", id="unknown-param-type"),
    pytest.param(drop("search_space.lr.type"), ("search_space", "lr", "type"),
                 "float, int or categorical", id="missing-param-type"),
    pytest.param(put("search_space.lr", 0.01), ("search_space", "lr"),
                 "Describe a parameter as an object", id="param-not-an-object"),
    pytest.param(put("search_space.lr.lgo", True), ("search_space", "lr", "lgo"),
                 "Extra inputs are not permitted", id="unknown-param-key"),
    pytest.param(put("search_space.momentum.when", {}), ("search_space", "momentum", "when"),
                 "at least one condition", id="empty-when"),
    pytest.param(put("search_space.learning-rate", {"type": "float", "low": 0.1, "high": 1.0}),
                 ("search_space", "learning-rate"), "not a parameter name", id="param-name"),
    pytest.param(put("search_space", {}), ("search_space",), "at least one parameter",
                 id="empty-search-space"),
    # conditions
    pytest.param(put("search_space.momentum.when", {"optim": ["momentum"]}),
                 ("search_space", "momentum", "when", "optim"),
                 "conditional on 'optim', which is not a parameter", id="when-unknown-param"),
    pytest.param(put("search_space.momentum.when", {"weight_decay": [0.0]}),
                 ("search_space", "momentum", "when", "weight_decay"),
                 "weight_decay is fixed", id="when-fixed-param"),
    pytest.param(put("search_space.momentum.when", {"optimizer": ["adam", "adamx"]}),
                 ("search_space", "momentum", "when", "optimizer", 1),
                 "'adamx' is not among the choices of optimizer", id="when-unknown-value"),
    pytest.param(put("search_space.optimizer.when", {"optimizer": ["sgd"]}),
                 ("search_space", "optimizer", "when", "optimizer"),
                 "cannot be conditional on itself", id="when-self"),
    pytest.param(put("search_space.optimizer.when", {"lr": [0.1]}),
                 ("search_space", "optimizer", "when", "lr"),
                 "only name categorical parameters; lr is float", id="when-not-categorical"),
    pytest.param(CYCLE, ("search_space", "norm", "when"),
                 "cycle: norm -> activation -> norm", id="when-cycle"),
    pytest.param(put("fixed.lr", 0.01), ("fixed", "lr"), "both tuned (search_space) and fixed",
                 id="tuned-and-fixed"),
    # built-in trainer parameters
    pytest.param(put("search_space.learning_rate", {"type": "float", "low": 0.1, "high": 1.0}),
                 ("search_space", "learning_rate"), "Did you mean 'lr'?", id="unknown-param"),
    pytest.param(put("fixed.weight_decy", 0.1), ("fixed", "weight_decy"),
                 "Did you mean 'weight_decay'?", id="unknown-fixed-param"),
    pytest.param(put("search_space.optimizer.choices", ["sgd", "adamx"]),
                 ("search_space", "optimizer", "choices", 1), "Unknown optimizer 'adamx'",
                 id="unknown-optimizer"),
    pytest.param(put("fixed.optimizer", "adamx"), ("fixed", "optimizer"),
                 "Unknown optimizer 'adamx'", id="unknown-fixed-optimizer"),
    pytest.param(put("fixed.norm", "group"), ("fixed", "norm"), "Unknown norm 'group'",
                 id="unknown-norm"),
    pytest.param(put("search_space.activation", {"type": "categorical", "choices": ["swish"]}),
                 ("search_space", "activation", "choices", 0), "Unknown activation 'swish'",
                 id="unknown-activation"),
    pytest.param(put("search_space.optimizer", {"type": "int", "low": 0, "high": 3}),
                 ("search_space", "optimizer", "type"), "use type: categorical",
                 id="optimizer-not-categorical"),
    pytest.param(put("search_space.batch_size", {"type": "float", "low": 16, "high": 64}),
                 ("search_space", "batch_size", "type"), "whole number; use type: int",
                 id="int-param-as-float"),
    pytest.param(put("search_space.dropout.high", 1.0), ("search_space", "dropout", "high"),
                 "dropout must be at least 0 and less than 1, but high is 1", id="dropout-range"),
    pytest.param(put("fixed.weight_decay", "1e-4"), ("fixed", "weight_decay"),
                 "must be a number, not '1e-4'", id="fixed-number-as-string"),
    pytest.param(put("fixed.layers", 2.5), ("fixed", "layers"), "whole number",
                 id="fixed-int-as-float"),
    pytest.param(both(put("objective.dataset", "wine"),
                      put("search_space.cutmix_alpha", {"type": "float", "low": 0.1, "high": 1})),
                 ("search_space", "cutmix_alpha"), "cutmix needs image-shaped data",
                 id="cutmix-on-tabular"),
    # objective
    pytest.param(drop("objective.builtin"), ("objective",), "Give either builtin",
                 id="no-objective-kind"),
    pytest.param(put("objective.entrypoint", "mine"), ("objective", "entrypoint"),
                 "not both", id="builtin-and-entrypoint"),
    pytest.param(drop("objective.dataset"), ("objective", "dataset"), "needs a dataset",
                 id="builtin-without-dataset"),
    pytest.param(put("objective.dataset", "digit"), ("objective", "dataset"),
                 "Unknown dataset 'digit'. Did you mean 'digits'?", id="unknown-dataset"),
    pytest.param(put("objective.dataset", "/data/train.xlsx"), ("objective", "dataset"),
                 ".csv or .npz or .parquet", id="dataset-file-type"),
    pytest.param(put("objective.dataset", "diabetes"), ("objective", "dataset"),
                 "diabetes is a regression dataset; use builtin: regressor",
                 id="regression-dataset-for-classifier"),
    pytest.param(put("objective.task", "regression"), ("objective", "task"),
                 "solves classification, not regression", id="task-mismatch"),
    pytest.param(put("objective.model", "resnet"), ("objective", "model"),
                 "Unknown model 'resnet'; valid models: mlp, cnn", id="unknown-model"),
    pytest.param(both(put("objective.model", "cnn"), put("objective.dataset", "wine")),
                 ("objective", "model"), "cnn needs image-shaped data", id="cnn-on-tabular"),
    pytest.param(put("objective.metric", "val_acc"), ("objective", "metric"),
                 "does not report 'val_acc'", id="unknown-metric"),
    pytest.param(put("objective.metric", "val_mse"), ("objective", "metric"),
                 "It reports: epoch_time_s, generalization_gap, lr, train_accuracy",
                 id="regression-metric-for-classifier"),
    pytest.param(put("objective.direction", "minimize"), ("objective", "direction"),
                 "val_accuracy is better when higher, so its direction should be maximize",
                 id="wrong-direction"),
    pytest.param(put("objective.direction", "up"), ("objective", "direction"),
                 "minimize or maximize (a list of them for several metrics), not 'up'",
                 id="unknown-direction"),
    pytest.param(both(MULTI, put("objective.direction", ["maximize", "down"])),
                 ("objective", "direction", 1), "not 'down'", id="unknown-direction-in-list"),
    pytest.param(put("objective.metric", 3), ("objective", "metric"), "3 is not a name",
                 id="metric-not-a-name"),
    pytest.param(put("search_space.optimizer.choices", ["sgd", {"lr": 1}]),
                 ("search_space", "optimizer", "choices", 1), "A choice is a string, a number",
                 id="choice-not-a-scalar"),
    pytest.param(put("pruner", {"type": "hyperband", "min_resource": "some"}),
                 ("pruner", "min_resource"), "number of steps (at least 1) or 'auto'",
                 id="min-resource-word"),
    pytest.param(put("objective.max_epochs", 0), ("objective", "max_epochs"),
                 "greater than or equal to 1", id="max-epochs-zero"),
    pytest.param(put("objective.validation", {"fraction": 0.2, "k_folds": 5}),
                 ("objective", "validation", "k_folds"), "not both", id="fraction-and-k-folds"),
    pytest.param(put("objective.validation", {"fraction": 1.0}),
                 ("objective", "validation", "fraction"), "less than 1", id="fraction-one"),
    pytest.param(put("objective.validation", {"k_folds": 1}),
                 ("objective", "validation", "k_folds"), "greater than or equal to 2",
                 id="one-fold"),
    pytest.param(put("objective.lr_scaling", {"rule": "linear", "base_batch_size": 0}),
                 ("objective", "lr_scaling", "base_batch_size"), "greater than 0",
                 id="lr-scaling-base"),
    # multi-objective
    pytest.param(MULTI, ("pruner",), "Pruning needs a single objective", id="multi-with-pruner"),
    pytest.param(both(MULTI, drop("pruner"), put("sampler", {"type": "cmaes"})),
                 ("sampler", "type"), "cmaes sampler optimises a single objective",
                 id="multi-with-cmaes"),
    pytest.param(put("objective.metric", ["val_accuracy", "val_loss"]), ("objective", "direction"),
                 "must be a list of 2 directions", id="multi-with-one-direction"),
    pytest.param(both(MULTI, put("objective.direction", ["maximize"])), ("objective", "direction"),
                 "must be a list of 2 directions", id="multi-direction-length"),
    pytest.param(put("objective.direction", ["maximize"]), ("objective", "direction"),
                 "single metric takes a single direction", id="single-with-direction-list"),
    pytest.param(both(put("objective.metric", ["val_accuracy"]),
                      put("objective.direction", ["maximize"])),
                 ("objective", "metric"), "needs at least two", id="metric-list-of-one"),
    pytest.param(both(put("objective.metric", ["val_loss", "val_loss"]),
                      put("objective.direction", ["minimize", "minimize"])),
                 ("objective", "metric", 1), "listed twice", id="metric-listed-twice"),
    # sampler
    pytest.param(put("sampler.type", "tpee"), ("sampler", "type"),
                 "Unknown sampler 'tpee'; valid samplers: random, grid, tpe", id="unknown-sampler"),
    pytest.param(put("sampler.options", {"n_startup": 5}), ("sampler", "options", "n_startup"),
                 "no option 'n_startup'; its options: n_startup_trials",
                 id="unknown-sampler-option"),
    pytest.param(put("sampler", {"type": "random", "options": {"seed": 1}}),
                 ("sampler", "options", "seed"), "takes no options", id="random-with-options"),
    pytest.param(put("sampler.options", {"n_startup_trials": -1}),
                 ("sampler", "options", "n_startup_trials"), "greater than or equal to 0",
                 id="bad-sampler-option"),
    pytest.param(put("sampler.seed", -1), ("sampler", "seed"), "greater than or equal to 0",
                 id="negative-seed"),
    pytest.param(GRID, ("search_space", "lr", "step"), "grid sampler needs a finite set",
                 id="grid-continuous"),
    pytest.param(both(GRID, put("search_space", {
        "hidden": {"type": "int", "low": 1, "high": 1000},
        "layers": {"type": "int", "low": 1, "high": 1000},
    })), ("search_space",), "at most 100,000", id="grid-too-large"),
    # pruner
    pytest.param(put("pruner.type", "asha"), ("pruner", "type"),
                 "Unknown pruner 'asha'; valid pruners: none, median", id="unknown-pruner"),
    pytest.param(put("pruner", {"type": "median", "reduction_factor": 3}),
                 ("pruner", "reduction_factor"), "does not apply to the median pruner",
                 id="pruner-option-for-other-type"),
    pytest.param(put("pruner", {"type": "percentile"}), ("pruner", "percentile"),
                 "needs percentile", id="percentile-missing"),
    pytest.param(put("pruner", {"type": "percentile", "percentile": 150}),
                 ("pruner", "percentile"), "less than or equal to 100", id="percentile-range"),
    pytest.param(put("pruner", {"type": "threshold"}), ("pruner",), "needs lower, upper or both",
                 id="threshold-without-bounds"),
    pytest.param(put("pruner", {"type": "threshold", "lower": 2.0, "upper": 1.0}),
                 ("pruner", "upper"), "lower must be less than upper", id="threshold-order"),
    pytest.param(put("pruner", {"type": "patience"}), ("pruner", "patience"),
                 "needs patience", id="patience-missing"),
    pytest.param(put("pruner", {"type": "patience", "patience": 2, "wrapped": "none",
                                "n_startup_trials": 3}),
                 ("pruner", "n_startup_trials"), "wrapped is none", id="patience-unwrapped"),
    pytest.param(put("pruner", {"type": "hyperband", "reduction_factor": 1}),
                 ("pruner", "reduction_factor"), "greater than or equal to 2",
                 id="reduction-factor"),
    pytest.param(put("pruner", {"type": "hyperband", "min_resource": 50}),
                 ("pruner", "min_resource"), "less than the objective's max_epochs (50)",
                 id="min-resource-above-max-epochs"),
    pytest.param(put("pruner", {"type": "hyperband", "max_resource": 80}),
                 ("pruner", "max_resource"), "cannot exceed the objective's max_epochs",
                 id="max-resource-above-max-epochs"),
    pytest.param(put("pruner", {"type": "wilcoxon", "p_threshold": 2}),
                 ("pruner", "p_threshold"), "less than or equal to 1", id="wilcoxon-p"),
    # early stopping and callbacks
    pytest.param(put("early_stopping.monitor", "val_los"), ("early_stopping", "monitor"),
                 "Did you mean 'val_loss'", id="early-stopping-monitor"),
    pytest.param(put("early_stopping", {"monitor": "lr"}), ("early_stopping", "mode"),
                 "set mode to min or max", id="early-stopping-mode-unknown"),
    pytest.param(put("early_stopping.patience", -1), ("early_stopping", "patience"),
                 "greater than or equal to 0", id="early-stopping-patience"),
    pytest.param(put("early_stopping.min_delta", -0.1), ("early_stopping", "min_delta"),
                 "greater than or equal to 0", id="early-stopping-min-delta"),
    pytest.param(put("callbacks.checkpoint.monitor", "accuracy"),
                 ("callbacks", "checkpoint", "monitor"), "does not report 'accuracy'",
                 id="checkpoint-monitor"),
    pytest.param(put("callbacks.checkpoint.keep", ["best", "best"]),
                 ("callbacks", "checkpoint", "keep"), "at most once", id="checkpoint-keep"),
    pytest.param(put("callbacks.lr_schedule.type", "cyclic"), ("callbacks", "lr_schedule", "type"),
                 "Unknown lr schedule 'cyclic'", id="unknown-schedule"),
    pytest.param(put("callbacks.lr_schedule.step_size", 5),
                 ("callbacks", "lr_schedule", "step_size"),
                 "does not apply to the cosine schedule", id="schedule-option-for-other-type"),
    pytest.param(put("callbacks.lr_schedule.warmup_epochs", 50),
                 ("callbacks", "lr_schedule", "warmup_epochs"), "less than max_epochs (50)",
                 id="warmup-too-long"),
    pytest.param(both(put("callbacks.lr_schedule", {"type": "step", "gamma": 0.5}),
                      put("fixed.gamma", 0.1)),
                 ("callbacks", "lr_schedule", "gamma"), "set it in one place",
                 id="schedule-gamma-twice"),
    # budget, resources, the rest
    pytest.param(put("budget.n_trials", 0), ("budget", "n_trials"),
                 "greater than or equal to 1", id="n-trials-zero"),
    pytest.param(put("budget.n_trials", 100_001), ("budget", "n_trials"),
                 "less than or equal to 100000", id="n-trials-too-many"),
    pytest.param(drop("budget.n_trials"), ("budget", "n_trials"), "Field required",
                 id="n-trials-missing"),
    pytest.param(put("budget.max_parallel", 0), ("budget", "max_parallel"),
                 "greater than or equal to 1", id="max-parallel-zero"),
    pytest.param(put("budget.timeout_s", 0), ("budget", "timeout_s"), "greater than 0",
                 id="timeout-zero"),
    pytest.param(put("budget.max_failed", -1), ("budget", "max_failed"),
                 "greater than or equal to 0", id="max-failed-negative"),
    pytest.param(put("budget.max_retries", 11), ("budget", "max_retries"),
                 "less than or equal to 10", id="max-retries-too-many"),
    pytest.param(drop("budget"), ("budget",), "Field required", id="budget-missing"),
    pytest.param(put("resources.queue", "GPU"), ("resources", "queue"), "not a queue name",
                 id="queue-name"),
    pytest.param(put("resources.device", "gpu"), ("resources", "device"),
                 "use auto, cpu, cuda or cuda:N", id="device"),
    pytest.param(put("name", "digits mlp"), ("name",), "not a study name", id="name"),
    pytest.param(put("name", ""), ("name",), "at least 1 character", id="name-empty"),
    pytest.param(put("standard", "vision@0"), ("standard",), "name@N", id="standard-ref"),
    pytest.param(both(put("standard", "vision"), put("override", {"reason": "  "})),
                 ("override", "reason"), "Say why", id="override-empty-reason"),
    pytest.param(put("override", {"reason": "trying a wider lr range"}), ("override",),
                 "names a standard", id="override-without-standard"),
    pytest.param(put("nmae", "x"), ("nmae",), "Extra inputs are not permitted",
                 id="unknown-top-level-key"),
    pytest.param(put("budget.n_trails", 3), ("budget", "n_trails"),
                 "Extra inputs are not permitted", id="unknown-nested-key"),
]


@pytest.mark.parametrize(("mutate", "loc", "message"), INVALID)
def test_invalid_spec_is_rejected_at_the_field(
    mutate: Mutation, loc: tuple[Any, ...], message: str
) -> None:
    spec = copy.deepcopy(EXAMPLE_SPEC)
    mutate(spec)
    errors = errors_of(spec)
    at_loc = [e["msg"] for e in errors if e["loc"] == loc]
    assert at_loc, f"no error at {loc}: {[(e['loc'], e['msg']) for e in errors]}"
    assert any(message in m for m in at_loc), at_loc


def test_example_spec_is_valid_and_complete() -> None:
    spec = StudySpec.model_validate(EXAMPLE_SPEC)
    assert spec.objective.task == "classification"
    assert spec.metrics == ["val_accuracy"]
    assert spec.directions == ["maximize"]
    assert not spec.is_multi_objective
    assert isinstance(spec.search_space["hidden"], IntParam)
    assert isinstance(spec.search_space["optimizer"], CategoricalParam)
    assert spec.objective.validation.fraction == 0.2


def test_a_validated_spec_round_trips_through_json() -> None:
    spec = StudySpec.model_validate(EXAMPLE_SPEC)
    stored = json.loads(json.dumps(spec.model_dump(mode="json")))
    again = StudySpec.model_validate(stored)
    assert again == spec
    assert spec_hash(again) == spec_hash(spec)


def test_spec_hash_ignores_key_order_and_sees_changes() -> None:
    reordered = dict(reversed(list(copy.deepcopy(EXAMPLE_SPEC).items())))
    assert spec_hash(StudySpec.model_validate(reordered)) == spec_hash(
        StudySpec.model_validate(EXAMPLE_SPEC)
    )
    changed = copy.deepcopy(EXAMPLE_SPEC)
    changed["budget"]["n_trials"] = 99
    assert spec_hash(StudySpec.model_validate(changed)) != spec_hash(
        StudySpec.model_validate(EXAMPLE_SPEC)
    )
    assert len(spec_hash(StudySpec.model_validate(EXAMPLE_SPEC))) == 64


def test_defaults_of_a_minimal_builtin_spec() -> None:
    spec = StudySpec.model_validate({
        "name": "wine",
        "objective": {
            "builtin": "classifier", "dataset": "wine", "metric": "val_f1", "direction": "maximize",
        },
        "search_space": {"lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True}},
        "budget": {"n_trials": 5},
    })
    assert spec.objective.model == "mlp"
    assert spec.objective.task == "classification"
    assert spec.sampler == SamplerSpec(type="tpe")
    assert spec.pruner is None
    assert spec.early_stopping is None
    assert spec.callbacks.terminate_on_nan
    assert spec.callbacks.checkpoint is not None and spec.callbacks.checkpoint.keep == ["latest"]
    assert spec.budget.max_parallel == 1 and spec.budget.max_retries == 2
    assert spec.resources.queue == "default" and spec.resources.device == "auto"


def test_file_datasets_and_regression() -> None:
    spec = StudySpec.model_validate({
        "name": "houses",
        "objective": {
            "builtin": "regressor", "dataset": "/shared/houses.parquet", "target": "price",
            "metric": "val_mae", "direction": "minimize",
        },
        "search_space": {"hidden": {"type": "int", "low": 16, "high": 64}},
        "early_stopping": {"monitor": "val_r2"},
        "budget": {"n_trials": 5},
    })
    assert spec.objective.task == "regression"
    assert spec.early_stopping is not None and spec.early_stopping.resolved_mode == "max"


def test_k_folds_replace_the_hold_out_fraction_and_add_std_metrics() -> None:
    spec = copy.deepcopy(EXAMPLE_SPEC)
    spec["objective"]["validation"] = {"k_folds": 5}
    spec["early_stopping"] = {"monitor": "val_loss_std", "mode": "min"}
    parsed = StudySpec.model_validate(spec)
    assert parsed.objective.validation.fraction is None
    assert parsed.objective.validation.k_folds == 5
    assert StudySpec.model_validate(parsed.model_dump(mode="json")) == parsed


def test_entrypoint_objectives_take_any_metric_and_parameter_names() -> None:
    spec = copy.deepcopy(ENTRYPOINT_SPEC)
    spec["search_space"]["optimizer"] = {"type": "categorical", "choices": ["lion", "sophia"]}
    spec["fixed"] = {"temperature": 0.7}
    parsed = StudySpec.model_validate(spec)
    assert parsed.objective.task is None and parsed.objective.model is None
    assert parsed.objective.reported_metrics() is None


def test_multi_objective_spec() -> None:
    spec = copy.deepcopy(ENTRYPOINT_SPEC)
    spec["objective"]["metric"] = ["accuracy", "latency_ms"]
    spec["objective"]["direction"] = ["maximize", "minimize"]
    spec["sampler"] = {"type": "nsga2", "seed": 1, "options": {"population_size": 8}}
    spec["pruner"] = {"type": "none"}
    parsed = StudySpec.model_validate(spec)
    assert parsed.is_multi_objective
    assert parsed.metrics == ["accuracy", "latency_ms"]
    assert parsed.directions == ["maximize", "minimize"]


def test_several_problems_are_reported_together() -> None:
    spec = copy.deepcopy(EXAMPLE_SPEC)
    spec["fixed"] = {"lr": 0.01, "optimizer": "adamx"}
    spec["early_stopping"]["monitor"] = "val_los"
    locs = {e["loc"] for e in errors_of(spec)}
    assert {("fixed", "lr"), ("fixed", "optimizer"), ("early_stopping", "monitor")} <= locs


def test_sampler_options_keep_only_what_was_given() -> None:
    sampler = SamplerSpec.model_validate({"type": "tpe", "options": {"n_startup_trials": "5"}})
    assert sampler.options == {"n_startup_trials": 5}
    assert SamplerSpec(type="qmc", options={"qmc_type": "halton"}).options == {"qmc_type": "halton"}


def test_pruner_options_are_those_given() -> None:
    pruner = PrunerSpec(type="hyperband", min_resource=2, max_resource="auto")
    assert pruner.options() == {"min_resource": 2, "max_resource": "auto"}


def test_grid_accepts_finite_spaces() -> None:
    spec = copy.deepcopy(EXAMPLE_SPEC)
    spec["sampler"] = {"type": "grid"}
    spec["search_space"]["lr"] = {"type": "categorical", "choices": [1e-3, 1e-2]}
    spec["search_space"]["momentum"]["step"] = 0.01
    spec["search_space"]["dropout"]["step"] = 0.25
    spec["search_space"]["batch_size"] = {"type": "categorical", "choices": [32, 64]}
    parsed = StudySpec.model_validate(spec)
    assert parsed.search_space["dropout"].grid_size() == 3


def test_json_schema_lists_names_and_carries_the_example() -> None:
    schema = StudySpec.model_json_schema()
    assert schema["examples"] == [EXAMPLE_SPEC]
    assert schema["$defs"]["SamplerSpec"]["properties"]["type"]["enum"][:3] == [
        "random", "grid", "tpe",
    ]


def test_float_grid_values_are_exact_decimals() -> None:
    param = FloatParam(type="float", low=0.0, high=0.3, step=0.1)
    assert param.grid_values() == [0.0, 0.1, 0.2, 0.3]
    assert IntParam(type="int", low=32, high=128, step=32).grid_values() == [32, 64, 96, 128]


def test_conditions_and_dependency_order() -> None:
    space = StudySpec.model_validate(EXAMPLE_SPEC).search_space
    assert condition_holds(space["momentum"], {"optimizer": "nesterov"})
    assert not condition_holds(space["momentum"], {"optimizer": "adam"})
    assert not condition_holds(space["momentum"], {})
    nested = {
        "c": CategoricalParam(type="categorical", choices=[1, 2], when={"b": ["x"]}),
        "b": CategoricalParam(type="categorical", choices=["x", "y"], when={"a": [True]}),
        "a": CategoricalParam(type="categorical", choices=[True, False]),
    }
    assert dependency_order(nested) == ["a", "b", "c"]
