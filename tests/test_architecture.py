"""api -> tuneboard <- workers, checked at run time (import-linter checks the static imports)."""

from __future__ import annotations

import subprocess
import sys


def _modules_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return {name.split(".")[0] for name in out.stdout.split()}


def test_the_api_loads_neither_torch_nor_workers() -> None:
    loaded = _modules_after_import("api.main")
    assert "torch" not in loaded
    assert "workers" not in loaded


def test_the_training_loop_loads_neither_celery_nor_optuna() -> None:
    loaded = _modules_after_import("workers.training")
    assert "celery" not in loaded
    assert "optuna" not in loaded
