"""The README's "Run trials anywhere" examples, run as a user runs them: a live server, and the
example script in a process of its own with TUNEBOARD_URL and TUNEBOARD_API_KEY."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from tests.api.conftest import Team
from tests.live_server import serve

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def env(app: FastAPI, team: Team) -> Iterator[dict[str, str]]:
    with serve(app) as url:
        yield {**os.environ, "TUNEBOARD_URL": url, "TUNEBOARD_API_KEY": team.keys["member"]}


def last_json_line(output: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return result


def test_the_python_example_runs_a_whole_study(env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, str(EXAMPLES / "external_python.py")], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    summary = last_json_line(done.stdout)
    counts = summary["counts"]
    assert summary["state"] == "completed", summary
    assert isinstance(counts, dict)
    assert counts["complete"] + counts["pruned"] == 12 and counts["fail"] == 0, counts
    assert counts["pruned"] >= 1, counts  # the median pruner stopped the hopeless ones


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl, jq")
def test_the_curl_example_runs_a_whole_study(env: dict[str, str]) -> None:
    done = subprocess.run(["bash", str(EXAMPLES / "external-curl.sh")], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = last_json_line(done.stdout)
    assert summary["state"] == "completed", summary
    counts = summary["counts"]
    assert isinstance(counts, dict) and counts["complete"] + counts["pruned"] == 5, counts
    assert done.stdout.count("trial ") == 5


def test_the_readme_shows_both_examples() -> None:
    text = README.read_text()
    section = text.split("## Run trials anywhere", 1)[1].split("\n## ", 1)[0]
    assert "from tuneboard.client import Tuneboard" in section
    assert "examples/external-curl.sh" in section and "examples/external_python.py" in section
