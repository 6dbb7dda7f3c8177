"""``tuneboard dashboard``: optuna-dashboard over the store, read-only, for one team.

optuna-dashboard has no authentication and, on a writable storage, renames and deletes studies
(a rename copies the study, then deletes the original with its per-epoch metrics). Here it runs
on :class:`~tuneboard.optimization.readonly.ReadOnlyStorage`, which refuses every write, and
every request that could write is answered 403 with the reason before it reaches
optuna-dashboard, whose views would turn the storage's refusal into a bare 500.

It is an optional extra (``pip install 'tuneboard[dashboard]'``); optuna and optuna-dashboard
are imported only when the command runs, since they take seconds to load and no other command
needs them.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Annotated, Any, NoReturn
from wsgiref.simple_server import WSGIServer, make_server

import typer

from tuneboard.config import get_settings
from tuneboard.db import session_scope
from tuneboard.teams import repository as teams

app = typer.Typer()

INSTALL_HINT = "pip install 'tuneboard[dashboard]'"
_READS = frozenset({"GET", "HEAD", "OPTIONS"})

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _fail(message: str) -> NoReturn:
    typer.echo(f"tuneboard dashboard: {message}", err=True)
    raise typer.Exit(code=1)


def _refusing_writes(wsgi_app: WSGIApp, reason: str) -> WSGIApp:
    """``wsgi_app`` answering 403 ``{"reason": reason}`` to every request but GET, HEAD and
    OPTIONS."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") in _READS:
            return wsgi_app(environ, start_response)
        body = json.dumps({"reason": reason}).encode()
        start_response(
            "403 Forbidden",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def _team_id(url: str, team: str | None) -> tuple[int | None, str]:
    """The team to show (None: the whole store, when it holds at most one team) and how the
    banner says it."""
    with session_scope(url) as session:
        names = teams.team_names(session)
        if team is None:
            if len(names) > 1:
                _fail(f"the store holds several teams ({', '.join(names)}): pick one with --team")
            return None, f"team {names[0]!r}" if names else "every study"
        found = teams.get_team_by_name(session, team)
        if found is None:
            known = f" (teams: {', '.join(names)})" if names else " (the store has no team)"
            _fail(f"team {team!r} does not exist{known}")
        return found.id, f"team {team!r}"


@app.command()
def dashboard(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on")] = 8080,
    team: Annotated[
        str | None,
        typer.Option(help="the team whose studies to show (needed when the store has several)"),
    ] = None,
) -> None:
    """Serve optuna-dashboard on the store, read-only (needs the `dashboard` extra).

    It shows each study under its own name, with its metric names, and our trial fields
    (epochs_run, device, attempt, accepted, verdict) as user attributes. It changes nothing:
    change studies through the Tuneboard API. Never point optuna-dashboard or `optuna
    --storage` at the database URL itself: they create Optuna's own tables in it.
    """
    if importlib.util.find_spec("optuna_dashboard") is None:
        _fail(f"optuna-dashboard is not installed: {INSTALL_HINT}")
    import optuna_dashboard

    from tuneboard.optimization.readonly import READ_ONLY_MESSAGE, ReadOnlyStorage
    from tuneboard.optimization.storage import SchemaMismatch, check_schema

    url = get_settings().database_url
    try:
        check_schema(url)
    except SchemaMismatch as err:
        _fail(err.message)
    team_id, shown = _team_id(url, team)
    storage = ReadOnlyStorage(url, team_id=team_id)
    wsgi_app = _refusing_writes(optuna_dashboard.wsgi(storage), READ_ONLY_MESSAGE)
    server = make_server(host, port, wsgi_app, server_class=_ThreadingServer)
    typer.echo(f"optuna-dashboard, read-only, {shown}: http://{host}:{server.server_port}/dashboard")
    typer.echo("Press Ctrl-C to stop.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
