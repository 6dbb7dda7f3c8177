"""The server commands: ``tuneboard up`` end to end, and its local admin key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.live_server import free_port
from tests.workers.conftest import PLUGINS, steps_spec, wait_until
from tuneboard.cli.server import LOCAL_TEAM, _local_admin_key
from tuneboard.config import Settings
from tuneboard.db import session_scope
from tuneboard.teams import service as teams


def test_the_local_admin_key_is_created_once_and_kept(db_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=db_url, home=tmp_path, environment="test")
    key = _local_admin_key(settings)
    assert settings.api_key_file.read_text().strip() == key
    assert settings.api_key_file.stat().st_mode & 0o777 == 0o600
    assert _local_admin_key(settings) == key

    settings.api_key_file.write_text("tb_not-a-key\n")
    replaced = _local_admin_key(settings)
    assert replaced != key
    with session_scope(db_url) as session:
        principal = teams.authenticate(session, replaced)
        assert (principal.team_name, principal.role) == (LOCAL_TEAM, "admin")
        assert teams.authenticate(session, key).team_name == LOCAL_TEAM


def _processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_up_serves_the_api_runs_a_study_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    home = tmp_path / "tb-home"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUNEBOARD_")}
    env.update(TUNEBOARD_HOME=str(home), PYTHONPATH=str(PLUGINS), OMP_NUM_THREADS="1")
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "tuneboard.cli", "up", "--port", str(port), "--concurrency", "1"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        def healthy() -> bool:
            assert up.poll() is None, (tmp_path / "up.log").read_text()
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout=90, message="the API to answer", interval=0.5)
        key = (home / "api-key").read_text().strip()
        assert key in (tmp_path / "up.log").read_text()
        auth = {"Authorization": f"Bearer {key}"}
        created = httpx.post(f"{base}/api/v1/studies", json=steps_spec(n_trials=3), headers=auth)
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        done = wait_until(
            lambda: (s := httpx.get(f"{base}/api/v1/studies/{sid}", headers=auth).json())["state"]
            not in ("queued", "running") and s,
            timeout=90, message="the study to finish", interval=0.5,
        )
        assert done["state"] == "completed", (tmp_path / "up.log").read_text()
        assert _processes_with(f"TUNEBOARD_HOME={home}")

        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0
        wait_until(lambda: not _processes_with(f"TUNEBOARD_HOME={home}"), timeout=10,
                   message="every child to exit")
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
        for pid in _processes_with(f"TUNEBOARD_HOME={home}"):
            os.kill(pid, signal.SIGKILL)
        log.close()
