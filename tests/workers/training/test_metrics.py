from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, r2_score, roc_auc_score

from workers.training.metrics import (
    f1_macro,
    generalization_gap,
    metric_mode,
    r2,
    roc_auc,
)


def _proba(n: int, k: int, seed: int) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(size=(n, k))
    e = np.exp(logits)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("k", [2, 4])
def test_auc_and_f1_match_sklearn(k: int) -> None:
    y = np.random.default_rng(1).integers(0, k, size=200)
    proba = _proba(200, k, 2)
    expected_auc = (
        roc_auc_score(y, proba[:, 1]) if k == 2 else roc_auc_score(y, proba, multi_class="ovr")
    )
    assert roc_auc(y, proba) == pytest.approx(expected_auc)
    assert f1_macro(y, proba) == pytest.approx(f1_score(y, proba.argmax(1), average="macro"))


def test_auc_guards_single_class_and_nan() -> None:
    proba = _proba(10, 3, 0)
    assert roc_auc(np.zeros(10, dtype=np.int64), proba) == 0.5
    assert roc_auc(np.zeros(10, dtype=np.int64), _proba(10, 2, 0)) == 0.5
    proba[0, 0] = np.nan
    assert math.isnan(roc_auc(np.arange(10) % 3, proba))


def test_r2_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    y, pred = rng.normal(size=50).astype(np.float32), rng.normal(size=50).astype(np.float32)
    assert r2(y, pred) == pytest.approx(r2_score(y, pred), rel=1e-6)


def test_gap_is_positive_when_overfitting() -> None:
    logs = {"train_accuracy": 0.99, "val_accuracy": 0.9, "train_loss": 0.1, "val_loss": 0.4,
            "train_mse": 1.0, "val_mse": 3.0}
    assert generalization_gap(logs, "val_accuracy") == pytest.approx(0.09)
    assert generalization_gap(logs, "val_loss") == pytest.approx(0.3)
    assert generalization_gap(logs, "val_mse") == pytest.approx(2.0)
    assert generalization_gap(logs, "epoch_time_s") == pytest.approx(0.3)


def test_modes() -> None:
    assert metric_mode("val_accuracy") == "max"
    assert metric_mode("val_r2") == "max"
    assert metric_mode("val_mae") == "min"
    assert metric_mode("val_accuracy_std") == "min"
    assert metric_mode("generalization_gap") == "min"
