"""The README's "Standards: the whole loop", run as a user runs it: its bash block, word for word,
against a live server and a real Celery worker, with the CLI and curl. Then the records it
leaves: verdicts with the stability interval, the promoted version, the warm-started study."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.main import create_app
from tests.api.conftest import API, Team
from tests.live_server import serve
from tests.workers.conftest import Stack
from tuneboard.config import Settings
from tuneboard.db.engine import is_sqlite

ROOT = Path(__file__).resolve().parents[2]
# A Redis database of this module's own (the other API and worker tests flush 13).
REDIS_URL = os.environ.get("TUNEBOARD_TEST_LOOP_REDIS_URL", "redis://127.0.0.1:6379/9")

pytestmark = pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("jq")), reason="the README's loop needs curl, jq"
)


def readme_loop() -> str:
    section = (ROOT / "README.md").read_text().split("### Standards: the whole loop", 1)[1]
    match = re.search(r"```bash\n(.*?)```", section.split("\n## ", 1)[0], re.DOTALL)
    assert match, "the README's standards loop has no bash block"
    return match.group(1)


@pytest.fixture
def stack(db_url: str, tmp_path: Path) -> Iterator[Stack]:
    home = tmp_path / "home"
    home.mkdir()
    if is_sqlite(db_url):
        broker = f"sqla+sqlite:///{home / 'broker.db'}"
    else:
        redis.Redis.from_url(REDIS_URL).flushdb()
        broker = REDIS_URL
    stack = Stack(db_url=db_url, broker_url=broker, home=home)
    try:
        stack.wait_ready(stack.start_worker("loop"))
        yield stack
    finally:
        stack.stop_all()
        if not is_sqlite(db_url):
            redis.Redis.from_url(REDIS_URL).flushdb()


@pytest.fixture
def app(stack: Stack) -> FastAPI:
    return create_app(Settings(database_url=stack.db_url, broker_url=stack.broker_url,
                               home=stack.home, environment="test"))


def test_the_readme_loop_publishes_judges_promotes_and_warm_starts(
    app: FastAPI, stack: Stack, team: Team
) -> None:
    with serve(app) as url:
        env = {**stack.env, "TUNEBOARD_URL": url, "TUNEBOARD_API_KEY": team.keys["admin"],
               "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", readme_loop()], cwd=ROOT,
                              env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{stack.logs()}"
    assert "digits-baseline" in done.stdout and '"version": 2' in done.stdout

    with TestClient(app) as client:
        headers = team.headers("viewer")
        studies = client.get(f"{API}/studies", headers=headers).json()["items"]
        first, nxt = sorted(studies, key=lambda s: s["id"])
        assert (first["state"], nxt["state"]) == ("completed", "completed")
        trials = client.get(f"{API}/studies/{first['id']}/trials", headers=headers).json()["items"]
        accepted = [t for t in trials if t["verdict"] and t["verdict"]["accepted"]]
        assert accepted, trials

        # The candidate's page shows the mean's one-sided interval and what it rests on.
        page = client.get(f"{API}/studies/{first['id']}/trials/{accepted[0]['number']}",
                          headers=headers).json()
        (mean,) = [c for c in page["verdict"]["criteria"] if c["op"] == "mean>="]
        assert (mean["n"], mean["confidence"], mean["test"], mean["threshold"]) == (
            3, 0.95, "t", 0.8)
        low, high = mean["interval"]
        assert 0.8 <= low <= mean["observed"] and high is None and mean["passed"]
        assert f"[{low:.6g}, inf)" in mean["detail"]
        reruns = [t for t in trials if t["origin"] == "stability"]
        assert len(reruns) >= 2 and len(reruns) % 2 == 0

        best = client.get(f"{API}/studies/{first['id']}/leaderboard?accepted_only=true",
                          headers=headers).json()["items"][0]
        version = client.get(f"{API}/standards/digits-baseline", headers=headers).json()
        assert version["version"] == 2 and version["changelog"].endswith(
            f"trial {best['number']} (value {best['value']:g})")

        # The next study began with the promoted configuration: the best accepted trial's.
        next_trials = client.get(f"{API}/studies/{nxt['id']}/trials",
                                 headers=headers).json()["items"]
        assert nxt["parent_id"] == first["id"]
        assert next_trials[0]["origin"] == "warm_start"
        searched = {"lr", "hidden"}
        assert {k: next_trials[0]["params"][k] for k in searched} == {
            k: best["params"][k] for k in searched}
