from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.workers.training.conftest import ContextFactory
from workers.training import TrainingConfigError, load_dataset, train
from workers.training.datasets import Standardizer, holdout_split, kfold_splits


def _table(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    return pd.DataFrame(
        {"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": np.where(x[:, 0] > 0, "yes", "no")}
    )


def test_csv_and_parquet_by_path(tmp_path: Path) -> None:
    frame = _table()
    frame.to_csv(tmp_path / "d.csv", index=False)
    frame.to_parquet(tmp_path / "d.parquet")
    for name in ("d.csv", "d.parquet"):
        dataset = load_dataset(str(tmp_path / name), target="label")
        assert dataset.task == "classification" and dataset.n_classes == 2
        assert dataset.x.shape == (60, 3)


def test_regression_is_inferred_or_given(tmp_path: Path) -> None:
    frame = _table().assign(label=np.linspace(0.0, 1.0, 60))
    frame.to_csv(tmp_path / "r.csv", index=False)
    assert load_dataset(str(tmp_path / "r.csv"), target="label").task == "regression"


def test_npz_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "img.npz", X=rng.normal(size=(40, 6, 6)), y=np.arange(40) % 2)
    dataset = load_dataset(str(tmp_path / "img.npz"))
    assert dataset.is_image and dataset.x.shape == (40, 1, 6, 6)


def test_trains_on_a_file(make_ctx: ContextFactory, tmp_path: Path) -> None:
    _table().to_csv(tmp_path / "d.csv", index=False)
    result = train(make_ctx({"dataset": str(tmp_path / "d.csv"), "target": "label",
                             "task": "classification", "max_epochs": 2}))
    assert result["epochs_run"] == 2.0


def test_file_errors_name_the_problem(tmp_path: Path) -> None:
    _table().to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(TrainingConfigError, match=r"objective\.target"):
        load_dataset(str(tmp_path / "d.csv"), target="missing")
    with pytest.raises(TrainingConfigError, match="non-numeric"):
        load_dataset(str(tmp_path / "d.csv"), target="a")
    with pytest.raises(TrainingConfigError, match="no file"):
        load_dataset(str(tmp_path / "absent.csv"))


def test_synthetic_options() -> None:
    dataset = load_dataset(
        "synthetic", options={"n_samples": 120, "n_features": 6, "n_classes": 3, "seed": 4}
    )
    assert dataset.x.shape == (120, 6) and dataset.n_classes == 3
    regression = load_dataset("synthetic_regression", options={"n_samples": 50, "noise": 1.0})
    assert regression.task == "regression" and len(regression) == 50
    with pytest.raises(TrainingConfigError, match="dataset_options: unknown n_rows"):
        load_dataset("synthetic", options={"n_rows": 10})
    with pytest.raises(TrainingConfigError, match="only synthetic"):
        load_dataset("iris", options={"n_samples": 10})


def test_holdout_is_stratified_and_seeded() -> None:
    iris = load_dataset("iris")
    fold = holdout_split(iris, fraction=0.2, stratify=True, seed=3)
    assert np.bincount(iris.y[fold.val]).tolist() == [10, 10, 10]
    assert np.array_equal(fold.val, holdout_split(iris, fraction=0.2, stratify=True, seed=3).val)
    assert not np.intersect1d(fold.train, fold.val).size


def test_k_folds_cover_every_row_once() -> None:
    wine = load_dataset("wine")
    folds = kfold_splits(wine, k=4, seed=0)
    assert sorted(np.concatenate([f.val for f in folds]).tolist()) == list(range(len(wine)))
    with pytest.raises(TrainingConfigError, match="k_folds"):
        kfold_splits(wine, k=1, seed=0)


def test_standardizer_fits_on_train_only() -> None:
    digits = load_dataset("digits")
    fold = holdout_split(digits, fraction=0.25, stratify=True, seed=0)
    scaler = Standardizer.fit(digits.x[fold.train])
    train_x = scaler.transform(digits.x[fold.train])
    assert train_x.shape == digits.x[fold.train].shape
    flat = train_x.reshape(len(train_x), -1)
    assert np.allclose(flat.mean(axis=0), 0.0, atol=1e-5)
    assert np.isfinite(scaler.transform(digits.x[fold.val])).all()
