"""The client installs where training code runs: importing it loads no server code."""

from __future__ import annotations

import subprocess
import sys

SERVER = ("api", "workers", "torch", "sqlalchemy", "optuna", "celery", "fastapi", "pydantic")


def test_importing_the_client_loads_no_server_code() -> None:
    code = "import sys, tuneboard.client; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    loaded = set(out.stdout.split())
    ours = {name for name in loaded if name.split(".")[0] == "tuneboard"}
    assert ours <= {"tuneboard", "tuneboard.client", "tuneboard.client._errors",
                    "tuneboard.client._http", "tuneboard.client._sdk"}, ours
    assert not {name.split(".")[0] for name in loaded} & set(SERVER)
