"""Server commands: start the API, the workers and the reaper, and administer the store.

The API and the workers run by module path (uvicorn's ``api.main:app``, ``python -m
workers...``) in processes of their own, never imported here, so the command stays free of
the web app and of torch. ``db``, ``team`` and ``key`` talk to the database directly: they are
for whoever runs the service, on its machine.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, NoReturn

import typer

from tuneboard import processes
from tuneboard.config import Settings, get_settings
from tuneboard.db import migrate as migrations
from tuneboard.db import session_scope
from tuneboard.errors import TuneboardError, Unauthorized
from tuneboard.teams import service as teams

app = typer.Typer()
db_app = typer.Typer(help="Database schema (Alembic).", no_args_is_help=True)
team_app = typer.Typer(help="Teams.", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(team_app, name="team")
app.add_typer(key_app, name="key")


def _fail(err: TuneboardError) -> NoReturn:
    typer.echo(json.dumps({"error": {"code": err.code, "message": err.message}}), err=True)
    raise typer.Exit(code=1)


LOCAL_TEAM = "local"


@app.command()
def up(
    host: Annotated[str, typer.Option(help="address the API listens on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port the API listens on")] = 8000,
    concurrency: Annotated[
        int | None, typer.Option(help="trials at once on a CPU host (default: cores/2, max 4)")
    ] = None,
) -> None:
    """Run everything on this machine: API and UI, a worker and the reaper.

    In the foreground: applies migrations, creates the team "local" and prints its admin key
    (also written to $TUNEBOARD_HOME/api-key), then serves until Ctrl-C, which stops it all.
    """
    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(settings.database_url)
    key = _local_admin_key(settings)
    children = [
        processes.uvicorn_child(host, port),
        *processes.plan_workers(concurrency=concurrency, queues=None, trials_per_gpu=None),
        processes.reaper_child(),
    ]
    typer.echo(f"Tuneboard: http://{host}:{port}/ui  (API docs: http://{host}:{port}/docs)")
    typer.echo(f"Team {LOCAL_TEAM!r}, admin API key (also in {settings.api_key_file}):")
    typer.echo(key)
    typer.echo(f"  export TUNEBOARD_URL=http://{host}:{port} TUNEBOARD_API_KEY={key}")
    typer.echo("Press Ctrl-C to stop.")
    raise typer.Exit(processes.run_children(children, env=_child_env(settings)))


@app.command()
def api(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8000,
) -> None:
    """Serve the HTTP API and UI (uvicorn api.main:app).

    Run `tuneboard db upgrade` first.
    """
    child = processes.uvicorn_child(host, port)
    os.execv(sys.executable, child.argv)


@app.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(help="trials at once on a host without GPU (default: cores/2, max 4)"),
    ] = None,
    queues: Annotated[
        str | None,
        typer.Option(help="queues to consume, comma-separated (default: gpu,default on a GPU "
                          "host, default otherwise)"),
    ] = None,
    trials_per_gpu: Annotated[
        int | None, typer.Option(help="trials at once on each GPU (default 1)")
    ] = None,
    no_reaper: Annotated[
        bool, typer.Option("--no-reaper", help="do not run the reaper beside the workers")
    ] = False,
) -> None:
    """Run trials: Celery workers for this host's GPUs or CPU, and the reaper.

    One worker process per GPU (--trials-per-gpu trials each, queues gpu,default), or on a host
    without GPU one worker with --concurrency pool processes (queue default). The reaper fails
    trials whose worker was lost, retries them and re-sends lost messages.
    """
    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    children = processes.plan_workers(
        concurrency=concurrency, queues=queues, trials_per_gpu=trials_per_gpu
    )
    if not no_reaper:
        children.append(processes.reaper_child())
    raise typer.Exit(processes.run_children(children, env=_child_env(settings)))


@app.command()
def reaper() -> None:
    """Run the reaper alone, for workers started with --no-reaper.

    It fails trials whose worker was lost, retries them and re-sends lost messages.
    """
    get_settings().home.mkdir(parents=True, exist_ok=True)
    os.execv(sys.executable, processes.reaper_child().argv)


def _child_env(settings: Settings) -> dict[str, str]:
    return {"TUNEBOARD_HOME": str(settings.home.resolve())}


def _local_admin_key(settings: Settings) -> str:
    """The local team's admin key: the one in the key file if it still works, else a new one
    (and the team, the first time), written to the key file."""
    path = settings.api_key_file
    with session_scope(settings.database_url) as session:
        if path.is_file():
            raw = path.read_text().strip()
            try:
                principal = teams.authenticate(session, raw)
            except Unauthorized:
                principal = None
            if principal and principal.team_name == LOCAL_TEAM and principal.role == "admin":
                return raw
        team = teams.repository.get_team_by_name(session, LOCAL_TEAM)
        if team is None:
            _, raw = teams.create_team(session, LOCAL_TEAM, actor="tuneboard up")
        else:
            _, raw = teams.create_key(session, team, "admin", actor="tuneboard up",
                                      name="tuneboard up")
    path.write_text(raw + "\n")
    path.chmod(0o600)
    return raw


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    settings = get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    migrations.upgrade(settings.database_url, revision)


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument()]) -> None:
    """Revert migrations down to REVISION (e.g. -1 or base)."""
    migrations.downgrade(get_settings().database_url, revision)


@team_app.command("create")
def team_create(name: str) -> None:
    """Create a team; prints {"team": ..., "api_key": ...} with an admin key."""
    try:
        with session_scope(get_settings().database_url) as session:
            team, raw = teams.create_team(session, name)
            out = {"team": team.name, "team_id": team.id, "role": "admin", "api_key": raw}
    except TuneboardError as err:
        _fail(err)
    typer.echo(json.dumps(out))


@key_app.command("create")
def key_create(
    team: Annotated[str, typer.Option(help="team name")],
    role: Annotated[str, typer.Option(help="viewer | member | maintainer | admin")] = "member",
    name: Annotated[str, typer.Option(help="a label for the key")] = "",
) -> None:
    """Create an API key for a team; prints {"api_key": ...}."""
    try:
        with session_scope(get_settings().database_url) as session:
            key, raw = teams.create_key_for_team_name(session, team, role, name=name)
            out = {"api_key": raw, "key_id": key.id, "team": team, "role": role}
    except TuneboardError as err:
        _fail(err)
    typer.echo(json.dumps(out))


@key_app.command("revoke")
def key_revoke(team: Annotated[str, typer.Option()], key_id: int) -> None:
    """Revoke an API key by id."""
    try:
        with session_scope(get_settings().database_url) as session:
            t = teams.repository.get_team_by_name(session, team)
            if t is None:
                raise teams.NotFound(f"team {team!r} does not exist")
            teams.revoke_key(session, t.id, key_id, actor="cli")
    except TuneboardError as err:
        _fail(err)
    typer.echo(json.dumps({"revoked": key_id}))

