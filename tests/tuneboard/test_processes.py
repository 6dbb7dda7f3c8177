"""Planning worker processes on an install without torch (the slim API image's)."""

from __future__ import annotations

import subprocess
import sys

_WITHOUT_TORCH = (
    "import sys; sys.modules['torch'] = None\n"  # what an install without torch looks like
    "from tuneboard import processes\n"
    "processes.plan_workers(concurrency=1, queues=None, trials_per_gpu=None)\n"
)


def test_workers_without_torch_say_what_to_install() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_TORCH], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "pip install 'tuneboard[worker]'" in done.stderr
