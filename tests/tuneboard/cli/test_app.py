"""The command itself, before any server is involved: version, help text, reading spec files."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tuneboard.cli import app as cli

runner = CliRunner()

BROKEN_YAML = "name: digits-mlp\nobjective:\n  metric: val_accuracy\n   direction: maximize\n"


def test_version() -> None:
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"tuneboard {version('tuneboard')}"


def test_the_installed_entry_point_and_python_m_run_the_same_app() -> None:
    script = Path(sys.executable).parent / "tuneboard"
    commands = [[sys.executable, "-m", "tuneboard.cli", "--version"]]
    if script.is_file():
        commands.append([str(script), "--version"])
    for command in commands:
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        assert out.strip() == f"tuneboard {version('tuneboard')}", command


@pytest.mark.parametrize(
    "command",
    [[], ["submit"], ["watch"], ["leaderboard"], ["studies"], ["studies", "list"],
     ["standards"], ["standards", "check"]],
)
def test_client_help_names_the_environment_it_reads(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    result = runner.invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "TUNEBOARD_URL" in result.stdout and "TUNEBOARD_API_KEY" in result.stdout


@pytest.mark.parametrize(
    "command", [["submit"], ["standards", "check", "--standard", "s"], ["standards", "publish"]]
)
def test_a_broken_yaml_file_is_reported_with_its_path_and_line(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "500")
    monkeypatch.delenv("TUNEBOARD_API_KEY", raising=False)
    path = tmp_path / "study.yaml"
    path.write_text(BROKEN_YAML)
    result = runner.invoke(cli, [*command, str(path)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error {path}, line 4, column ")
    assert "mapping values are not allowed here" in result.stderr
    assert "<unicode string>" not in result.stderr


def test_a_file_that_is_not_a_mapping_says_what_it_should_be(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    result = runner.invoke(cli, ["submit", str(path)])
    assert result.exit_code == 1
    assert f"{path}: a study spec" in result.stderr and "is a mapping" in result.stderr
