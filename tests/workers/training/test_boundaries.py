"""workers.training knows nothing of the service: importing it loads no Celery or Optuna."""

from __future__ import annotations

import subprocess
import sys


def test_trainer_imports_neither_celery_nor_optuna() -> None:
    code = (
        "import sys, workers.training\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'celery', 'optuna', 'api'})\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
