"""api -> tuneboard <- workers, checked at run time (import-linter checks the static imports;
the training loop's own boundary test is in tests/workers/training/test_boundaries.py)."""

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

