"""The ``tuneboard`` command. Server commands start the API and workers by module path in
processes of their own; client commands are thin HTTP clients of the API."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from tuneboard.config import get_settings
from tuneboard.db import session_scope
from tuneboard.db import migrate as migrations
from tuneboard.errors import TuneboardError
from tuneboard.teams import service as teams

app = typer.Typer(help="Tuneboard: hyperparameter search for teams.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema (Alembic).", no_args_is_help=True)
team_app = typer.Typer(help="Teams.", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(team_app, name="team")
app.add_typer(key_app, name="key")


def _fail(err: TuneboardError) -> None:
    typer.echo(json.dumps({"error": {"code": err.code, "message": err.message}}), err=True)
    raise typer.Exit(code=1)


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


if __name__ == "__main__":
    app()
