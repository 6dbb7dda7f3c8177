"""The built-in trainer's checkpoints in an S3 store (a local S3 server): a run cut short resumes
from the object, fetched on another "host" (an empty scratch directory), to the same result."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from tests import s3_support
from tests.s3_support import Bucket
from tests.workers.training.conftest import ContextFactory, Recorder
from tests.workers.training.test_train import (
    RESUME_CONFIG,
    RESUME_OBJECTIVE,
    RESUME_PARAMS,
    _comparable,
)
from tuneboard.artifacts import open_store
from workers.training import load_checkpoint, train

s3_endpoint, s3_bucket = s3_support.s3_endpoint, s3_support.s3_bucket  # fixtures

def test_a_run_resumes_from_its_s3_checkpoint_on_another_host(
    make_ctx: ContextFactory, s3_bucket: Bucket, tmp_path: Path
) -> None:
    whole = train(make_ctx(RESUME_OBJECTIVE, RESUME_PARAMS, checkpoint_dir=tmp_path / "whole",
                           **RESUME_CONFIG))
    url = f"{s3_bucket.url}/checkpoints/1/0"

    crashed = make_ctx(RESUME_OBJECTIVE, RESUME_PARAMS, checkpoint_dir=tmp_path / "host-a",
                       **RESUME_CONFIG)
    crashed.checkpoints = open_store(url)
    crashed.reporter = Recorder(raise_at=3, exc=RuntimeError("worker lost"))
    with pytest.raises(RuntimeError, match="worker lost"):
        train(crashed)
    assert s3_bucket.keys() == ["checkpoints/1/0/best.pt", "checkpoints/1/0/latest.pt"]
    assert not (tmp_path / "host-a").exists(), "the checkpoints went to the bucket only"
    saved = load_checkpoint(s3_bucket.get("checkpoints/1/0/latest.pt"))
    assert saved["epoch"] == 2
    assert isinstance(saved["rng"]["torch"], torch.Tensor)

    retry = make_ctx(RESUME_OBJECTIVE, RESUME_PARAMS, checkpoint_dir=tmp_path / "host-b",
                     **RESUME_CONFIG)
    retry.checkpoints = open_store(url)
    retry.resume_from = retry.checkpoints.fetch("latest.pt", tmp_path / "host-b")
    assert retry.resume_from == tmp_path / "host-b" / "latest.pt"
    resumed = train(retry)
    assert [step for step, _ in retry.reporter.steps] == [3, 4]  # type: ignore[union-attr]
    assert _comparable(resumed) == pytest.approx(_comparable(whole), abs=1e-6)
    assert load_checkpoint(s3_bucket.get("checkpoints/1/0/latest.pt"))["epoch"] == 4


def test_checkpoints_load_as_weights_only(make_ctx: ContextFactory, tmp_path: Path) -> None:
    """What the loop saves (weights, optimizer, schedule, RNG states, callback memory) is plain
    tensors and containers: ``weights_only`` loading refuses anything else."""
    ctx = make_ctx(RESUME_OBJECTIVE, RESUME_PARAMS, **RESUME_CONFIG)
    train(ctx)
    data = (ctx.checkpoint_dir / "latest.pt").read_bytes()
    state = load_checkpoint(data)
    assert state["epoch"] == 4

    torch.save({"epoch": 1, "code": NotData()}, tmp_path / "code.pt")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_checkpoint(tmp_path / "code.pt")


class NotData:
    """An object a checkpoint could smuggle in; unpickling it would run its module's code."""
