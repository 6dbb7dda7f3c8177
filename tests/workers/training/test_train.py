"""The built-in objective end to end, on tiny CPU models."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch

from tests.workers.training.conftest import ContextFactory, Recorder
from tuneboard.objective import TrialContext, TrialPruned
from tuneboard.spec.catalog import LR_SCHEDULES, OPTIMIZERS, reported_metric_names
from workers.training import TrainingConfigError, TrainingDiverged, load_checkpoint, train
from workers.training.trainer import reported_names


def recorded(ctx: object) -> Recorder:
    reporter = getattr(ctx, "reporter", None)
    assert isinstance(reporter, Recorder)
    return reporter


def test_classification_reports_every_metric_each_epoch(make_ctx: ContextFactory) -> None:
    ctx = make_ctx({"metric": "val_accuracy", "max_epochs": 2})
    result = train(ctx)
    steps = recorded(ctx).steps
    assert [step for step, _ in steps] == [1, 2]
    for _, logs in steps:
        assert set(logs) == reported_metric_names("classification")
    assert result["epochs_run"] == 2.0
    assert set(result) == reported_metric_names("classification") | {"epochs_run", "best_epoch"}
    assert result["generalization_gap"] == pytest.approx(
        result["train_accuracy"] - result["val_accuracy"]
    )


def test_regression_on_diabetes_reports_r2(make_ctx: ContextFactory) -> None:
    ctx = make_ctx({"dataset": "diabetes", "metric": "val_r2", "max_epochs": 8},
                   {"hidden": 32, "lr": 0.01})
    result = train(ctx)
    assert set(recorded(ctx).steps[0][1]) == reported_metric_names("regression")
    assert result["val_r2"] > 0.2
    assert result["generalization_gap"] == pytest.approx(result["train_r2"] - result["val_r2"])


def test_k_fold_reports_mean_and_std(make_ctx: ContextFactory) -> None:
    ctx = make_ctx({"validation": {"k_folds": 3, "seed": 1}, "max_epochs": 2})
    result = train(ctx)
    logs = recorded(ctx).steps[-1][1]
    assert set(logs) == reported_names("classification", cross_validated=True)
    assert "val_accuracy_std" in logs and "lr_std" not in logs
    assert logs["val_accuracy_std"] > 0
    assert result["val_accuracy"] == logs["val_accuracy"]


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_trains(make_ctx: ContextFactory, optimizer: str) -> None:
    lr = 1.0 if optimizer == "adadelta" else 0.05
    ctx = make_ctx({"max_epochs": 3}, {"optimizer": optimizer, "lr": lr, "batch_size": 16})
    train(ctx)
    losses = [logs["train_loss"] for _, logs in recorded(ctx).steps]
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[2] < losses[1] < losses[0]


@pytest.mark.parametrize("schedule", LR_SCHEDULES)
def test_every_schedule_runs_with_warmup(make_ctx: ContextFactory, schedule: str) -> None:
    ctx = make_ctx(
        {"max_epochs": 4},
        {"step_size": 2, "gamma": 0.5} if schedule == "step" else {},
        callbacks={"lr_schedule": {"type": schedule, "warmup_epochs": 1, "patience": 0}},
    )
    train(ctx)
    lrs = [logs["lr"] for _, logs in recorded(ctx).steps]
    assert lrs[0] == pytest.approx(0.005)
    assert lrs[1] == pytest.approx(0.01)
    if schedule == "constant":
        assert lrs[2:] == pytest.approx([0.01, 0.01])
    elif schedule == "step":
        assert lrs[2:] == pytest.approx([0.01, 0.005])
    else:
        assert lrs[3] <= lrs[1]


def test_linear_lr_scaling(make_ctx: ContextFactory) -> None:
    ctx = make_ctx({"max_epochs": 1, "lr_scaling": {"rule": "linear", "base_batch_size": 256}},
                   {"batch_size": 32, "lr": 0.08})
    assert train(ctx)["lr"] == pytest.approx(0.01)


def test_early_stopping_stops_on_a_plateau(make_ctx: ContextFactory) -> None:
    ctx = make_ctx(
        {"max_epochs": 20},
        {"lr": 1e-9, "optimizer": "sgd"},
        early_stopping={"monitor": "val_loss", "mode": "min", "patience": 2, "min_delta": 1e-3},
    )
    result = train(ctx)
    assert result["epochs_run"] == 3.0
    assert result["best_epoch"] == 1.0
    assert result["val_loss"] == recorded(ctx).steps[0][1]["val_loss"]


def test_early_stopping_without_restore_returns_the_last_epoch(make_ctx: ContextFactory) -> None:
    ctx = make_ctx(
        {"max_epochs": 20},
        {"lr": 1e-9, "optimizer": "sgd"},
        early_stopping={"monitor": "val_loss", "mode": "auto", "patience": 1, "min_delta": 1e-3,
                        "restore_best": False},
    )
    result = train(ctx)
    assert result["epochs_run"] == 2.0 and result["best_epoch"] == 1.0
    assert result["val_loss"] == recorded(ctx).steps[-1][1]["val_loss"]


def test_nan_loss_fails_with_its_reason(make_ctx: ContextFactory) -> None:
    ctx = make_ctx({"max_epochs": 5}, {"lr": 1e6, "optimizer": "sgd"},
                   callbacks={"terminate_on_nan": True})
    with pytest.raises(TrainingDiverged, match=r"^(train|val)_loss is (nan|inf) at epoch \d$"):
        train(ctx)


def test_pruning_propagates(make_ctx: ContextFactory) -> None:
    ctx = make_ctx({"max_epochs": 5})
    ctx.reporter = Recorder(raise_at=2, exc=TrialPruned("pruned at step 2"))
    with pytest.raises(TrialPruned):
        train(ctx)
    assert load_checkpoint(ctx.checkpoint_dir / "latest.pt")["epoch"] == 1


def test_stop_request_ends_after_the_current_epoch(make_ctx: ContextFactory) -> None:
    ctx = make_ctx({"max_epochs": 5})
    ctx.stop_requested = lambda: len(recorded(ctx).steps) >= 2
    result = train(ctx)
    assert result["epochs_run"] == 2.0
    assert len(recorded(ctx).steps) == 2


RESUME_OBJECTIVE = {"dataset": "digits", "metric": "val_accuracy", "max_epochs": 4}
RESUME_PARAMS = {
    "hidden": 24, "dropout": 0.2, "norm": "batch", "label_smoothing": 0.1, "mixup_alpha": 0.3,
    "cutmix_alpha": 0.5, "optimizer": "adamw", "weight_decay": 0.01, "lr": 0.005,
}
RESUME_CONFIG = {
    "early_stopping": {"monitor": "val_loss", "patience": 10},
    "callbacks": {
        "checkpoint": {"keep": ["latest", "best"], "monitor": "val_accuracy"},
        "lr_schedule": {"type": "cosine", "warmup_epochs": 1},
    },
}


def _comparable(result: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in result.items() if k != "epoch_time_s"}


def test_interrupted_run_resumes_to_the_same_result(
    make_ctx: ContextFactory, tmp_path: Path
) -> None:
    whole = train(make_ctx(RESUME_OBJECTIVE, RESUME_PARAMS, checkpoint_dir=tmp_path / "a",
                           **RESUME_CONFIG))

    crashed = make_ctx(RESUME_OBJECTIVE, RESUME_PARAMS, checkpoint_dir=tmp_path / "b",
                       **RESUME_CONFIG)
    crashed.reporter = Recorder(raise_at=3, exc=RuntimeError("worker lost"))
    with pytest.raises(RuntimeError, match="worker lost"):
        train(crashed)
    latest = tmp_path / "b" / "latest.pt"
    assert load_checkpoint(latest)["epoch"] == 2

    retry = make_ctx(RESUME_OBJECTIVE, RESUME_PARAMS, checkpoint_dir=tmp_path / "c",
                     **RESUME_CONFIG)
    retry.resume_from = latest
    resumed = train(retry)
    assert [step for step, _ in recorded(retry).steps] == [3, 4]
    assert _comparable(resumed) == pytest.approx(_comparable(whole), abs=1e-6)
    assert load_checkpoint(tmp_path / "c" / "latest.pt")["epoch"] == 4
    best = load_checkpoint(tmp_path / "a" / "best.pt")
    assert best["history"][-1]["val_accuracy"] == max(
        logs["val_accuracy"] for logs in best["history"]
    )


def test_k_fold_resumes_to_the_same_result(make_ctx: ContextFactory, tmp_path: Path) -> None:
    objective = {"validation": {"k_folds": 2}, "max_epochs": 3}
    whole = train(make_ctx(objective, {"dropout": 0.3}, checkpoint_dir=tmp_path / "a"))
    crashed = make_ctx(objective, {"dropout": 0.3}, checkpoint_dir=tmp_path / "b")
    crashed.reporter = Recorder(raise_at=2, exc=RuntimeError("worker lost"))
    with pytest.raises(RuntimeError):
        train(crashed)
    retry = make_ctx(objective, {"dropout": 0.3}, checkpoint_dir=tmp_path / "b")
    retry.resume_from = tmp_path / "b" / "latest.pt"
    assert _comparable(train(retry)) == pytest.approx(_comparable(whole), abs=1e-6)


def test_same_seed_same_result(make_ctx: ContextFactory) -> None:
    first = train(make_ctx(params={"dropout": 0.5}))
    second = train(make_ctx(params={"dropout": 0.5}))
    assert _comparable(first) == _comparable(second)


def test_mixup_and_cutmix_on_digits_with_cnn(make_ctx: ContextFactory) -> None:
    ctx = make_ctx(
        {"dataset": "digits", "model": "cnn", "max_epochs": 2, "metric": "val_accuracy"},
        {"channels": 4, "hidden": 16, "mixup_alpha": 0.4, "cutmix_alpha": 1.0,
         "norm": "layer", "activation": "gelu", "batch_size": 128},
    )
    result = train(ctx)
    assert result["val_accuracy"] > 0.3


@pytest.mark.parametrize(
    ("objective", "params"),
    [
        ({}, {"mixup_alpha": 0.2}),
        ({"dataset": "diabetes", "metric": "val_mse"}, {"mixup_alpha": 0.2}),
    ],
)
def test_mixup_on_flat_data(
    make_ctx: ContextFactory, objective: dict[str, object], params: dict[str, object]
) -> None:
    result = train(make_ctx({"max_epochs": 2, **objective}, params))
    assert math.isfinite(result["train_loss"])


def test_a_validated_spec_dump_with_unset_fields(make_ctx: ContextFactory) -> None:
    """What the worker passes: every optional field present, unset ones as None."""
    ctx = make_ctx(
        {"builtin": "classifier", "entrypoint": None, "dataset_options": None, "task": None,
         "metric": "val_accuracy", "direction": "maximize", "lr_scaling": None,
         "validation": {"fraction": None, "stratify": True, "seed": 0, "k_folds": 2}},
        early_stopping={"monitor": "val_accuracy", "mode": "auto", "patience": 5,
                        "min_delta": 0.0, "restore_best": True},
        callbacks={
            "terminate_on_nan": True,
            "checkpoint": None,
            "lr_schedule": {"type": "cosine", "warmup_epochs": 0, "step_size": None,
                            "gamma": None, "factor": None, "patience": None, "min_lr": 0.004,
                            "monitor": None},
        },
    )
    train(ctx)
    lrs = [logs["lr"] for _, logs in recorded(ctx).steps]
    assert lrs == pytest.approx([0.01, 0.0085, 0.0055])
    assert not ctx.checkpoint_dir.exists()


@pytest.mark.parametrize(
    ("objective", "params", "field"),
    [
        ({}, {"learning_rate": 0.1}, "params: the built-in trainer takes no learning_rate"),
        ({}, {"optimizer": "adamax"}, "params.optimizer"),
        ({"dataset": "wine", "model": "cnn"}, {}, "objective.model"),
        ({}, {"cutmix_alpha": 0.2}, "params.cutmix_alpha"),
        ({"metric": "val_r2"}, {}, "objective.metric"),
        ({"dataset": "mnist"}, {}, "objective.dataset"),
        ({"validation": {"fraction": 1.5}}, {}, "objective.validation.fraction"),
        ({}, {"dropout": 1.0}, "params.dropout"),
        ({}, {"norm": "group"}, "params.norm"),
    ],
)
def test_bad_specs_name_the_field(
    make_ctx: ContextFactory, objective: dict[str, object], params: dict[str, object], field: str
) -> None:
    with pytest.raises(TrainingConfigError, match=field.replace(".", r"\.")):
        train(make_ctx(objective, params))


def test_device_auto_and_unknown(make_ctx: ContextFactory) -> None:
    ctx = make_ctx({"max_epochs": 1})
    ctx.device = "auto"
    assert train(ctx)["epochs_run"] == 1.0
    ctx.device = "tpu:0"
    with pytest.raises(TrainingConfigError, match=r"resources\.device"):
        train(ctx)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_run_resumes_like_an_uninterrupted_one(
    make_ctx: ContextFactory, tmp_path: Path
) -> None:
    def ctx(name: str) -> TrialContext:
        c = make_ctx({"validation": {"k_folds": 2}, "max_epochs": 3}, {"dropout": 0.2},
                     checkpoint_dir=tmp_path / name)
        c.device = "cuda"
        return c

    whole = train(ctx("a"))
    crashed = ctx("b")
    crashed.reporter = Recorder(raise_at=2, exc=RuntimeError("worker lost"))
    with pytest.raises(RuntimeError):
        train(crashed)
    retry = ctx("b")
    retry.resume_from = tmp_path / "b" / "latest.pt"
    assert _comparable(train(retry)) == pytest.approx(_comparable(whole), abs=1e-4)


def test_reports_are_flushed_before_each_checkpoint(make_ctx: ContextFactory) -> None:
    events: list[str] = []
    ctx = make_ctx()
    latest = ctx.checkpoint_dir / "latest.pt"

    def report(step: int, metrics: Mapping[str, float]) -> None:
        events.append(f"report {step}")

    def flush() -> None:
        events.append(f"flush (checkpoint {'exists' if latest.exists() else 'absent'})")

    ctx.reporter, ctx.reports_flusher = report, flush
    train(ctx)
    assert events == [
        "report 1", "flush (checkpoint absent)",
        "report 2", "flush (checkpoint exists)",
        "report 3", "flush (checkpoint exists)",
    ]
