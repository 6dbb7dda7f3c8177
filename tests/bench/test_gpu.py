"""``bench/gpu.py`` without a GPU to measure: it says so and exits 0, and refuses bad arguments
before it starts anything. (Its measurements need a GPU; no test depends on one.)"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from types import ModuleType

import pytest

from tests.live_server import ROOT


def gpu_bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py"), *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def load_gpu_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "bench" / "gpu.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


def test_a_gpu_that_is_not_there_is_skipped() -> None:
    # No host has a GPU of NVML index 99: on a GPU host too, this is the no-GPU path.
    done = gpu_bench("--gpu", "99")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("no GPU: skipped ("), done.stdout


def test_a_host_without_nvml_is_skipped() -> None:
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pynvml.nvmlShutdown()
        pytest.skip("this host has NVML: bench/gpu.py would measure")
    done = gpu_bench()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith("no GPU: skipped (NVML: "), done.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--k", "1"], "--k must be at least 2"),
    (["--k", "4", "--trials", "3"], "--trials must be at least --k (4)"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--interval-ms", "1"], "--interval-ms must be between 10 and 10000"),
    (["--gpu", "-1"], "--gpu must be 0 or more"),
    (["--k", "two"], "argument --k: invalid int value: 'two'"),
])
def test_bad_arguments_are_refused(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        load_gpu_bench().main(args)
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert message in err, err
    assert "no GPU" not in out


def test_the_defaults_measure_one_and_four_trials_per_gpu() -> None:
    args = load_gpu_bench().parse_args([])
    assert (args.gpu, args.k, args.trials, args.interval_ms) == (0, 4, 8, 100.0)
