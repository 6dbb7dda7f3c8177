"""Which Celery worker processes a host runs, and what a trial records as its device."""

from __future__ import annotations

import pytest
import torch

from tuneboard import processes
from workers import devices

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="this host has a GPU")
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here")


def _option(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_a_host_without_gpu_runs_one_worker_with_n_pool_processes() -> None:
    (plan,) = devices.plan_worker_processes(gpus=[], concurrency=3)
    assert plan.argv[plan.argv.index("-A") + 1] == "workers.celery_app"
    assert (_option(plan.argv, "-P"), _option(plan.argv, "-c")) == ("prefork", "3")
    assert _option(plan.argv, "-Q") == "default"
    assert "CUDA_VISIBLE_DEVICES" not in plan.env and int(plan.env["OMP_NUM_THREADS"]) >= 1


def test_a_gpu_host_runs_one_worker_per_gpu() -> None:
    plan = devices.plan_worker_processes(gpus=["2", "5"], trials_per_gpu=2, concurrency=8)
    assert [p.env["CUDA_VISIBLE_DEVICES"] for p in plan] == ["2", "5"]
    assert [_option(p.argv, "-c") for p in plan] == ["2", "2"]
    assert {_option(p.argv, "-Q") for p in plan} == {"gpu,default"}
    assert len({_option(p.argv, "-n") for p in plan}) == 2


def test_queues_can_be_chosen() -> None:
    (plan,) = devices.plan_worker_processes(gpus=[], queues=["big", "default"])
    assert _option(plan.argv, "-Q") == "big,default"


def test_the_cli_plans_through_a_process_of_its_own() -> None:
    plan = processes.plan_workers(concurrency=2, queues="a,b", trials_per_gpu=None)
    gpus = devices.visible_gpus()
    assert len(plan) == max(1, len(gpus))
    assert _option(plan[0].argv, "-Q") == "a,b"


@no_gpu
def test_without_gpu_trials_run_on_the_cpu_unless_they_insist() -> None:
    assert devices.select_device("auto") == devices.select_device(None) == "cpu"
    assert devices.select_device("cpu") == "cpu"
    assert devices.describe_device("cpu") == "cpu"
    with pytest.raises(RuntimeError, match="no GPU"):
        devices.select_device("cuda")


@needs_gpu
def test_with_a_gpu_auto_means_cuda_and_the_device_is_named() -> None:
    assert devices.select_device("auto") == "cuda"
    label = devices.describe_device("cuda")
    assert label.startswith("cuda:") and torch.cuda.get_device_name(0)[:20] in label
    assert len(label) <= devices.DEVICE_LABEL_MAX
