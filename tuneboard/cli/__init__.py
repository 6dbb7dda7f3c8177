"""The ``tuneboard`` command.

Server commands (``server``) start the API, the workers and the reaper, and administer the
store; client commands (``client_commands``) are thin HTTP clients of the API, shown by
``render``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from tuneboard.cli import client_commands, dashboard, server

__all__ = ["app"]

app = typer.Typer(
    help=(
        "Tuneboard: hyperparameter search for teams.\n\n"
        "Client commands (submit, watch, studies, trials, cancel, leaderboard, export, notes, "
        "standards) talk to the API at "
        "TUNEBOARD_URL (default http://127.0.0.1:8000) with the key in TUNEBOARD_API_KEY "
        "(else $TUNEBOARD_HOME/api-key, written by `tuneboard up`)."
    ),
    no_args_is_help=True,
)
app.add_typer(server.app)
app.add_typer(client_commands.app)
app.add_typer(dashboard.app)


def _version() -> str:
    try:
        return version("tuneboard")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"tuneboard {_version()}")
        raise typer.Exit


@app.callback()
def _main(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True,
                     help="print the version and exit"),
    ] = False,
) -> None:
    """Options of the command itself, before any subcommand."""
