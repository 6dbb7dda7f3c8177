from __future__ import annotations

import copy

from tests.tuneboard.standards.support import baseline, spec
from tuneboard.standards import apply_defaults


def test_fills_missing_sections_and_keys_and_leaves_the_input_alone() -> None:
    s = spec()
    before = copy.deepcopy(s)
    merged, applied = apply_defaults(s, baseline())
    assert s == before
    assert merged["pruner"] == {"type": "hyperband"}
    assert merged["early_stopping"]["patience"] == 5
    assert merged["budget"] == {"n_trials": 10, "max_retries": 2}
    assert applied == ["pruner", "early_stopping", "budget.max_retries"]


def test_never_overrides_what_the_spec_states() -> None:
    s = spec(
        early_stopping={"monitor": "val_accuracy", "mode": "max"},
        pruner={"type": "median"},
        budget={"n_trials": 10, "max_retries": 0},
    )
    merged, applied = apply_defaults(s, baseline())
    assert merged["early_stopping"] == {
        "monitor": "val_accuracy", "mode": "max", "patience": 5, "min_delta": 1e-4
    }
    assert merged["pruner"] == {"type": "median"}
    assert merged["budget"]["max_retries"] == 0
    assert applied == ["early_stopping.patience", "early_stopping.min_delta"]


def test_nested_sections_merge_deeply_unless_their_types_differ() -> None:
    doc = baseline(defaults={
        "callbacks": {
            "terminate_on_nan": True,
            "checkpoint": {"keep": ["best"], "monitor": "val_loss"},
            "lr_schedule": {"type": "cosine", "warmup_epochs": 1},
        },
        "sampler": {"type": "tpe", "seed": 7, "options": {"n_startup_trials": 5}},
    })
    s = spec(callbacks={"checkpoint": {"keep": ["latest"]}, "lr_schedule": {"type": "step"}},
             sampler={"type": "random"})
    merged, applied = apply_defaults(s, doc)
    assert merged["callbacks"] == {
        "checkpoint": {"keep": ["latest"], "monitor": "val_loss"},
        "lr_schedule": {"type": "step"},
        "terminate_on_nan": True,
    }
    assert merged["sampler"] == {"type": "random"}
    assert applied == ["callbacks.terminate_on_nan", "callbacks.checkpoint.monitor"]


def test_null_counts_as_silent() -> None:
    merged, applied = apply_defaults(spec(pruner=None), baseline())
    assert merged["pruner"] == {"type": "hyperband"} and "pruner" in applied


def test_rule_defaults_become_fixed_only_where_the_spec_is_silent() -> None:
    doc = baseline(defaults={"fixed": {"dropout": 0.1, "optimizer": "adam"}})
    s = spec(search_space={"lr": {"type": "float", "low": 1e-4, "high": 1e-3}},
             fixed={"weight_decay": 0.0, "dropout": 0.2})
    merged, applied = apply_defaults(s, doc)
    assert merged["fixed"] == {"weight_decay": 0.0, "dropout": 0.2, "optimizer": "adam"}
    assert "lr" not in merged["fixed"]
    assert applied == ["fixed.optimizer"]
    merged, _ = apply_defaults({"name": "bare"}, doc)
    assert merged["fixed"] == {"optimizer": "adam", "lr": 1e-3, "dropout": 0.1}
