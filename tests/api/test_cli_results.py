"""The CLI's result commands against a live server: studies show, trials, cancel, export,
notes, and ``watch`` as a live display under a pseudo-terminal and as plain lines without one."""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from tests.api.conftest import Team, run_trials, spec
from tests.api.test_cli_client import env, live_url  # noqa: F401  (fixtures)
from tuneboard.cli import app as cli
from tuneboard.client import TuneboardClient
from tuneboard.db import session_scope
from tuneboard.studies import dispatch

runner = CliRunner()
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")
SMALL = spec(budget={"n_trials": 3, "max_parallel": 3})


def _submit(url: str, team: Team, body: dict | None = None) -> int:
    with TuneboardClient(url, team.keys["member"]) as client:
        study_id: int = client.submit(body or SMALL)["id"]
    return study_id


def _finish(db_url: str, study_id: int, values: list[float | None]) -> None:
    """Run the study's trials through Optuna on our storage, then let the dispatcher settle it
    (its budget is spent: completed)."""
    run_trials(db_url, study_id, values)
    with session_scope(db_url) as session:
        dispatch.dispatch(session, study_id)


def test_show_trials_and_cancel(env: Team, live_url: str, db_url: str) -> None:  # noqa: F811
    study_id = _submit(live_url, env)
    run_trials(db_url, study_id, [0.5, None], metrics=False)

    shown = runner.invoke(cli, ["studies", "show", str(study_id)])
    assert shown.exit_code == 0, shown.output
    assert "digits-mlp" in shown.stdout and "val_accuracy (maximize)" in shown.stdout
    assert "2/3 finished" in shown.stdout and "complete 1  pruned 1" in shown.stdout
    assert "trial #0" in shown.stdout and "0.5" in shown.stdout
    as_json = json.loads(runner.invoke(cli, ["studies", "show", str(study_id), "--json"]).stdout)
    assert as_json["id"] == study_id and as_json["best_trial"]["number"] == 0

    table = runner.invoke(cli, ["trials", str(study_id)])
    assert table.exit_code == 0, table.output
    for text in ("#0", "#1", "#2", "complete", "pruned", "waiting", "optimizer="):
        assert text in table.stdout, table.stdout
    listed = json.loads(runner.invoke(cli, ["trials", str(study_id), "--json"]).stdout)
    assert [(t["number"], t["state"]) for t in listed] == [
        (0, "complete"), (1, "pruned"), (2, "waiting")
    ]
    only = json.loads(runner.invoke(cli, ["trials", str(study_id), "--state", "pruned",
                                          "--json"]).stdout)
    assert [t["number"] for t in only] == [1]

    cancelled = runner.invoke(cli, ["cancel", str(study_id)])
    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.stdout.strip() == f"Study {study_id} cancelled"
    again = json.loads(runner.invoke(cli, ["cancel", str(study_id), "--json"]).stdout)
    assert again == {"id": study_id, "state": "cancelled"}

    missing = runner.invoke(cli, ["studies", "show", "99999"])
    assert missing.exit_code == 1 and "404 not_found" in missing.stderr


def test_export_csv_to_stdout_and_parquet_to_a_file(
    env: Team, live_url: str, db_url: str, tmp_path: Path  # noqa: F811
) -> None:
    study_id = _submit(live_url, env)
    _finish(db_url, study_id, [0.5, 0.9, 0.7])

    result = runner.invoke(cli, ["export", str(study_id)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [float(r["val_accuracy"]) for r in rows] == [0.5, 0.9, 0.7]
    assert [float(r["metric_val_accuracy"]) for r in rows] == pytest.approx([0.5, 0.9, 0.7])
    assert all(r["param_optimizer"] in ("sgd", "adam", "adamw") for r in rows)

    target = tmp_path / "trials.parquet"
    written = runner.invoke(cli, ["export", str(study_id), "--format", "parquet", "-o",
                                  str(target)])
    assert written.exit_code == 0, written.output
    assert str(target) in written.stdout
    table = pq.read_table(target)
    assert table.column("val_accuracy").to_pylist() == [0.5, 0.9, 0.7]
    assert table.column("param_optimizer").to_pylist() == [r["param_optimizer"] for r in rows]

    bad = runner.invoke(cli, ["export", str(study_id), "--format", "xlsx"])
    assert bad.exit_code == 2
    gone = tmp_path / "none.csv"
    failed = runner.invoke(cli, ["export", "99999", "-o", str(gone)])
    assert failed.exit_code == 1 and "404 not_found" in failed.stderr
    assert not gone.exists() and not list(tmp_path.glob("*.part"))


def test_notes_add_and_list(
    env: Team, live_url: str, db_url: str, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    study_id = _submit(live_url, env)
    (number,) = run_trials(db_url, study_id, [0.9], metrics=False)

    added = runner.invoke(cli, ["notes", "add", str(study_id), "lr above 0.01 diverges"])
    assert added.exit_code == 0, added.output
    assert added.stdout.startswith("Note ") and f"study {study_id}" in added.stdout
    on_trial = runner.invoke(cli, ["notes", "add", str(study_id), "--trial", str(number),
                                   "[bold]best[/bold] so far", "--json"])
    assert json.loads(on_trial.stdout)["trial_number"] == number
    from_stdin = runner.invoke(cli, ["notes", "add", str(study_id), "-"], input="from stdin\n")
    assert from_stdin.exit_code == 0, from_stdin.output

    listed = json.loads(runner.invoke(cli, ["notes", "list", str(study_id), "--json"]).stdout)
    assert [(n["trial_number"], n["body"]) for n in listed] == [
        (None, "from stdin\n"), (number, "[bold]best[/bold] so far"),
        (None, "lr above 0.01 diverges"),
    ]
    table = runner.invoke(cli, ["notes", "list", str(study_id), "--trial", str(number)])
    assert table.exit_code == 0, table.output
    assert "[bold]best[/bold] so far" in table.stdout and "diverges" not in table.stdout
    assert f"trial #{number}" in table.stdout

    blank = runner.invoke(cli, ["notes", "add", str(study_id), "   "])
    assert blank.exit_code == 1 and "body: must not be blank" in blank.stderr
    monkeypatch.setenv("TUNEBOARD_API_KEY", env.keys["viewer"])
    forbidden = runner.invoke(cli, ["notes", "add", str(study_id), "no"])
    assert forbidden.exit_code == 1 and "403 forbidden" in forbidden.stderr


def _watch_env(url: str, key: str, home: Path) -> dict[str, str]:
    return {**os.environ, "TUNEBOARD_URL": url, "TUNEBOARD_API_KEY": key,
            "TUNEBOARD_HOME": str(home), "TERM": "xterm-256color", "COLUMNS": "120",
            "LINES": "40", "PYTHONIOENCODING": "utf-8"}


def _read_until(fd: int, seen: bytearray, done: object, timeout: float) -> None:
    """Read the pseudo-terminal into ``seen`` until ``done(text)`` or the child closes it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(done) and done(ANSI.sub("", seen.decode("utf-8", "replace"))):
            return
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed its end
            return
        if not chunk:
            return
        seen += chunk
    raise AssertionError(f"timed out; the terminal showed:\n{seen.decode('utf-8', 'replace')}")


def test_watch_in_a_terminal_is_a_live_display(
    env: Team, live_url: str, db_url: str, tmp_path: Path  # noqa: F811
) -> None:
    study_id = _submit(live_url, env)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "tuneboard.cli", "watch", str(study_id)],
        stdin=follower, stdout=follower, stderr=follower, close_fds=True,
        env=_watch_env(live_url, env.keys["viewer"], tmp_path / "home"),
    )
    os.close(follower)
    seen = bytearray()
    try:
        _read_until(leader, seen, lambda text: "0/3 finished" in text, 60)
        _finish(db_url, study_id, [0.5, 0.9, 0.7])
        _read_until(leader, seen, lambda text: False, 60)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)
    raw = seen.decode("utf-8", "replace")
    text = ANSI.sub("", raw)
    assert "\x1b[" in raw, "a terminal gets a live display, not plain lines"
    assert "━" in text  # the progress bar
    assert "3/3 finished" in text, text
    assert "complete 3  pruned 0  failed 0  running 0  waiting 0" in text, text
    assert "best val_accuracy 0.9  (trial #1)" in text, text
    assert "optimizer=" in text
    assert f"Study {study_id} completed; best trial #1: 0.9" in text, text


def test_watch_without_a_terminal_prints_plain_lines(
    env: Team, live_url: str, db_url: str, tmp_path: Path  # noqa: F811
) -> None:
    study_id = _submit(live_url, env)
    _finish(db_url, study_id, [0.5, 0.9, 0.7])
    done = subprocess.run(
        [sys.executable, "-m", "tuneboard.cli", "watch", str(study_id)], capture_output=True,
        env=_watch_env(live_url, env.keys["viewer"], tmp_path / "home"), timeout=60,
    )
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert "\x1b" not in out and "━" not in out
    lines = out.splitlines()
    assert "completed  complete 3  pruned 0  fail 0  running 0  waiting 0  best 0.9" in lines[0]
    assert lines[-1].startswith(f"Study {study_id} completed; best trial #1: 0.9 (")
