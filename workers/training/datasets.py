"""Datasets the built-in trainer can train on, their splits and feature scaling.

Bundled: scikit-learn's small datasets (no download) and generated ones of any size, by the
names in :data:`tuneboard.spec.catalog.BUNDLED_DATASETS`. Files: ``.csv``, ``.parquet``
(one column is the target, the others numeric features) and ``.npz`` (arrays ``X`` and ``y``;
an ``X`` of shape ``(n, h, w)`` or ``(n, c, h, w)`` is image-shaped).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn import datasets as skd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from tuneboard.spec.catalog import BUNDLED_DATASETS, DATASET_FILE_SUFFIXES
from workers.training.errors import TrainingConfigError

__all__ = [
    "DATASETS",
    "SYNTHETIC_OPTIONS",
    "Dataset",
    "Fold",
    "Standardizer",
    "Task",
    "holdout_split",
    "kfold_splits",
    "load_dataset",
]

Task = Literal["classification", "regression"]
FloatArray = NDArray[np.float32]


@dataclass(frozen=True)
class Dataset:
    """Features ``x`` (float32, ``(n, features)`` or image-shaped ``(n, c, h, w)``) and targets.

    ``y`` holds class indices ``0..n_classes-1`` (int64) for classification and float32 values
    for regression (``n_classes`` is 0). Arrays are read-only: loaders are cached.
    """

    name: str
    x: FloatArray
    y: NDArray[Any]
    task: Task
    n_classes: int

    @property
    def is_image(self) -> bool:
        return self.x.ndim == 4

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class Fold:
    """Row indices of one train/validation split."""

    train: NDArray[np.intp]
    val: NDArray[np.intp]


def _frozen(
    name: str, x: NDArray[Any], y: NDArray[Any], task: Task, n_classes: int | None = None
) -> Dataset:
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    if task == "classification":
        classes, labels = np.unique(y, return_inverse=True)
        target: NDArray[Any] = labels.astype(np.int64).reshape(-1)
        k = len(classes) if n_classes is None else n_classes
    else:
        target = np.asarray(y, dtype=np.float32).reshape(-1)
        k = 0
    if not np.isfinite(x32).all():
        raise TrainingConfigError(f"dataset {name}: features contain NaN or infinite values")
    if task == "regression" and not np.isfinite(target).all():
        raise TrainingConfigError(f"dataset {name}: target contains NaN or infinite values")
    if task == "classification" and k < 2:
        raise TrainingConfigError(f"dataset {name}: classification needs at least two classes")
    x32.flags.writeable = False
    target.flags.writeable = False
    return Dataset(name=name, x=x32, y=target, task=task, n_classes=k)


def _digits(options: Mapping[str, Any]) -> Dataset:
    bunch = skd.load_digits()
    return _frozen("digits", bunch.images[:, None, :, :], bunch.target, "classification")


def _sklearn_table(name: str, loader: Callable[[], Any], task: Task) -> Callable[..., Dataset]:
    def load(options: Mapping[str, Any]) -> Dataset:
        bunch = loader()
        return _frozen(name, bunch.data, bunch.target, task)

    return load


SYNTHETIC_OPTIONS: frozenset[str] = frozenset(
    {"n_samples", "n_features", "n_classes", "n_informative", "noise", "seed"}
)


def _int_option(options: Mapping[str, Any], key: str, default: int, low: int) -> int:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise TrainingConfigError(f"objective.dataset_options.{key}: expected an integer")
    if value < low:
        raise TrainingConfigError(f"objective.dataset_options.{key}: must be at least {low}")
    return int(value)


def _float_option(options: Mapping[str, Any], key: str, default: float) -> float:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise TrainingConfigError(f"objective.dataset_options.{key}: expected a number >= 0")
    return float(value)


def _synthetic(options: Mapping[str, Any]) -> Dataset:
    n_samples = _int_option(options, "n_samples", 1000, 10)
    n_features = _int_option(options, "n_features", 20, 2)
    n_classes = _int_option(options, "n_classes", 2, 2)
    smallest = max(2, math.ceil(math.log2(2 * n_classes)))
    default_informative = min(n_features, max(smallest, n_features // 2))
    n_informative = _int_option(options, "n_informative", default_informative, 1)
    if n_informative > n_features or 2**n_informative < 2 * n_classes:
        raise TrainingConfigError(
            f"objective.dataset_options.n_informative: {n_informative} informative features "
            f"cannot separate {n_classes} classes out of {n_features} features"
        )
    x, y = skd.make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_informative,
        n_redundant=min(2, n_features - n_informative),
        n_classes=n_classes,
        flip_y=_float_option(options, "noise", 0.01),
        random_state=_int_option(options, "seed", 0, 0),
    )
    return _frozen("synthetic", x, y, "classification", n_classes)


def _synthetic_regression(options: Mapping[str, Any]) -> Dataset:
    if "n_classes" in options:
        raise TrainingConfigError("objective.dataset_options.n_classes: not for regression")
    n_features = _int_option(options, "n_features", 20, 1)
    x, y = skd.make_regression(
        n_samples=_int_option(options, "n_samples", 1000, 10),
        n_features=n_features,
        n_informative=_int_option(options, "n_informative", min(n_features, 10), 1),
        noise=_float_option(options, "noise", 0.1),
        random_state=_int_option(options, "seed", 0, 0),
    )
    return _frozen("synthetic_regression", x, y, "regression")


DATASETS: Mapping[str, Callable[[Mapping[str, Any]], Dataset]] = {
    "digits": _digits,
    "wine": _sklearn_table("wine", skd.load_wine, "classification"),
    "breast_cancer": _sklearn_table("breast_cancer", skd.load_breast_cancer, "classification"),
    "iris": _sklearn_table("iris", skd.load_iris, "classification"),
    "synthetic": _synthetic,
    "synthetic_regression": _synthetic_regression,
    "diabetes": _sklearn_table("diabetes", skd.load_diabetes, "regression"),
}
_GENERATED = frozenset({"synthetic", "synthetic_regression"})


def _infer_task(y: NDArray[Any]) -> Task:
    if y.dtype.kind in "fc" and not np.all(np.mod(y, 1) == 0):
        return "regression"
    return "classification"


def _read_table(path: Path, target: str) -> tuple[NDArray[Any], NDArray[Any]]:
    frame = pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)
    if target not in frame.columns:
        raise TrainingConfigError(
            f"objective.target: no column {target!r} in {path.name} "
            f"(columns: {', '.join(map(str, frame.columns))})"
        )
    features = frame.drop(columns=[target])
    numeric = pd.api.types.is_numeric_dtype
    non_numeric = [str(c) for c in features.columns if not numeric(features[c])]
    if non_numeric:
        raise TrainingConfigError(
            f"dataset {path.name}: non-numeric feature columns {', '.join(non_numeric)}"
        )
    if features.shape[1] == 0:
        raise TrainingConfigError(f"dataset {path.name}: no feature columns besides the target")
    return features.to_numpy(dtype=np.float32), frame[target].to_numpy()


def _read_npz(path: Path) -> tuple[NDArray[Any], NDArray[Any]]:
    with np.load(path, allow_pickle=False) as archive:
        missing = {"X", "y"} - set(archive.files)
        if missing:
            raise TrainingConfigError(
                f"dataset {path.name}: missing arrays {', '.join(sorted(missing))} (needs X and y)"
            )
        x, y = archive["X"], archive["y"]
    if x.ndim == 3:
        x = x[:, None, :, :]
    if x.ndim not in (2, 4):
        raise TrainingConfigError(
            f"dataset {path.name}: X must be (n, features), (n, h, w) or (n, c, h, w), "
            f"got shape {x.shape}"
        )
    return x, y


@functools.lru_cache(maxsize=8)
def _load_file(path: Path, mtime_ns: int, target: str, task: Task | None) -> Dataset:
    x, y = _read_npz(path) if path.suffix == ".npz" else _read_table(path, target)
    if len(x) != len(y):
        raise TrainingConfigError(f"dataset {path.name}: {len(x)} rows of X but {len(y)} of y")
    return _frozen(str(path), x, y, task or _infer_task(y))


@functools.lru_cache(maxsize=16)
def _load_bundled(name: str, options: tuple[tuple[str, Any], ...]) -> Dataset:
    return DATASETS[name](dict(options))


def load_dataset(
    dataset: str,
    *,
    options: Mapping[str, Any] | None = None,
    target: str = "target",
    task: Task | None = None,
) -> Dataset:
    """A bundled dataset by name, or a file by path; ``task`` only applies to files.

    Results are cached per process (files by path and modification time), so the trials of a
    study that share a worker load their data once.
    """
    options = dict(options or {})
    if dataset in BUNDLED_DATASETS:
        bundled_task = BUNDLED_DATASETS[dataset]
        if task is not None and task != bundled_task:
            raise TrainingConfigError(
                f"objective.task: {dataset} is a {bundled_task} dataset, not {task}"
            )
        if options and dataset not in _GENERATED:
            raise TrainingConfigError(
                f"objective.dataset_options: only {', '.join(sorted(_GENERATED))} take options"
            )
        not_scalar = sorted(k for k, v in options.items() if not isinstance(v, int | float))
        if not_scalar:
            raise TrainingConfigError(
                f"objective.dataset_options: {', '.join(not_scalar)} must be numbers"
            )
        unknown = sorted(set(options) - SYNTHETIC_OPTIONS)
        if unknown:
            raise TrainingConfigError(
                f"objective.dataset_options: unknown {', '.join(unknown)}; "
                f"expected some of {', '.join(sorted(SYNTHETIC_OPTIONS))}"
            )
        return _load_bundled(dataset, tuple(sorted(options.items())))
    path = Path(dataset).expanduser()
    if path.suffix not in DATASET_FILE_SUFFIXES:
        raise TrainingConfigError(
            f"objective.dataset: unknown dataset {dataset!r}; expected one of "
            f"{', '.join(BUNDLED_DATASETS)} or a {'/'.join(DATASET_FILE_SUFFIXES)} file"
        )
    if not path.is_file():
        raise TrainingConfigError(f"objective.dataset: no file at {dataset}")
    if options:
        raise TrainingConfigError("objective.dataset_options: not for file datasets")
    return _load_file(path.resolve(), path.stat().st_mtime_ns, target, task)


def holdout_split(dataset: Dataset, *, fraction: float, stratify: bool, seed: int) -> Fold:
    """A seeded train/validation split; stratified by class when asked and the task allows."""
    if not 0.0 < fraction < 1.0:
        raise TrainingConfigError(f"objective.validation.fraction: {fraction} is not in (0, 1)")
    index = np.arange(len(dataset))
    labels = dataset.y if stratify and dataset.task == "classification" else None
    try:
        train, val = train_test_split(
            index, test_size=fraction, random_state=seed, shuffle=True, stratify=labels
        )
    except ValueError as exc:
        raise TrainingConfigError(
            f"objective.validation: cannot split {dataset.name}: {exc}"
        ) from exc
    return Fold(train=np.sort(train), val=np.sort(val))


def kfold_splits(dataset: Dataset, *, k: int, seed: int, stratify: bool = True) -> list[Fold]:
    """K seeded folds; stratified for classification unless ``stratify`` is false."""
    if k < 2:
        raise TrainingConfigError(f"objective.validation.k_folds: {k} is less than 2")
    index = np.arange(len(dataset))
    if stratify and dataset.task == "classification":
        smallest = int(np.bincount(dataset.y).min())
        if smallest < k:
            raise TrainingConfigError(
                f"objective.validation.k_folds: {k} folds but the smallest class of "
                f"{dataset.name} has {smallest} rows"
            )
        splitter: KFold | StratifiedKFold = StratifiedKFold(k, shuffle=True, random_state=seed)
        pairs = splitter.split(index, dataset.y)
    else:
        if len(dataset) < 2 * k:
            raise TrainingConfigError(
                f"objective.validation.k_folds: {k} folds need at least {2 * k} rows"
            )
        splitter = KFold(k, shuffle=True, random_state=seed)
        pairs = splitter.split(index)
    return [Fold(train=train, val=val) for train, val in pairs]


@dataclass(frozen=True)
class Standardizer:
    """Per-feature (per-pixel for images) zero mean, unit variance; fit on a train split only."""

    mean: FloatArray
    std: FloatArray

    @classmethod
    def fit(cls, x: FloatArray) -> Standardizer:
        flat = x.reshape(len(x), -1).astype(np.float64)
        std = flat.std(axis=0)
        std[std < 1e-12] = 1.0
        return cls(mean=flat.mean(axis=0).astype(np.float32), std=std.astype(np.float32))

    def transform(self, x: FloatArray) -> FloatArray:
        flat = (x.reshape(len(x), -1) - self.mean) / self.std
        return flat.reshape(x.shape).astype(np.float32)
