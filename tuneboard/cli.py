"""The ``tuneboard`` command. Server commands start the API and workers by module path in
processes of their own; client commands are thin HTTP clients of the API."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tuneboard import processes
from tuneboard.client import ApiError, ConfigError, TuneboardClient
from tuneboard.config import Settings, get_settings
from tuneboard.db import migrate as migrations
from tuneboard.db import session_scope
from tuneboard.errors import TuneboardError, Unauthorized
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


# --- client commands: HTTP clients of the API (TUNEBOARD_URL, TUNEBOARD_API_KEY) ----------------

studies_app = typer.Typer(help="Studies, over the API.", no_args_is_help=True)
app.add_typer(studies_app, name="studies")
_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)
FINISHED_STUDY_STATES = ("completed", "cancelled", "failed")
JsonFlag = Annotated[bool, typer.Option("--json", help="print the API's JSON instead")]


def _client_fail(err: Exception) -> NoReturn:
    if isinstance(err, ApiError):
        _err.print(f"[red]error[/red] {err.status} {escape(err.code)}: {escape(err.message)}")
        details = err.details
        if isinstance(details, list):
            for item in details:
                if isinstance(item, dict) and "field" in item:
                    _err.print(f"  {escape(str(item['field']))}: {escape(str(item.get('reason')))}")
        elif details:
            _err.print(escape(json.dumps(details, indent=2)))
    else:
        _err.print(f"[red]error[/red] {escape(str(err))}")
    raise typer.Exit(code=1)


def _client() -> TuneboardClient:
    try:
        return TuneboardClient.from_env()
    except ConfigError as err:
        _client_fail(err)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    return str(value)


def _progress_line(data: dict[str, Any]) -> str:
    counts = data["counts"]
    return (
        f"{time.strftime('%H:%M:%S')}  {data['state']:<9}  complete {counts['complete']}  "
        f"pruned {counts['pruned']}  fail {counts['fail']}  running {counts['running']}  "
        f"waiting {counts['waiting']}  best {_fmt(data.get('best_value'))}"
    )


def _follow(client: TuneboardClient, study_id: int, as_json: bool) -> str:
    """Print the study's progress events until it finishes; returns its final state."""
    while True:
        for event, data in client.events(study_id):
            if as_json:
                typer.echo(json.dumps({"event": event, "data": data}))
            elif event == "progress":
                _out.print(_progress_line(data))
        state: str = client.study(study_id)["state"]
        if state in FINISHED_STUDY_STATES:
            return state


@app.command()
def submit(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="study spec, YAML or JSON")
    ],
    idempotency_key: Annotated[
        str | None, typer.Option(help="resubmitting with the same key returns the same study")
    ] = None,
    follow: Annotated[bool, typer.Option("--watch", help="then follow it until it ends")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Submit a study (POST /api/v1/studies); prints its id."""
    try:
        spec = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        _client_fail(ConfigError(f"{file}: not YAML or JSON: {err}"))
    if not isinstance(spec, dict):
        _client_fail(ConfigError(f"{file}: a study spec is a mapping (name, objective, ...)"))
    with _client() as client:
        try:
            study = client.submit(spec, idempotency_key)
            if as_json:
                typer.echo(json.dumps(study))
            else:
                pairs = zip(study["metrics"], study["directions"], strict=False)
                metrics = ", ".join(f"{m} ({d})" for m, d in pairs)
                _out.print(f"Study {study['id']} [bold]{escape(study['name'])}[/bold] "
                           f"{study['state']}: {escape(metrics)}")
                if study.get("standard"):
                    _out.print(f"  standard {escape(study['standard'])}")
                if not follow:
                    _out.print(f"  follow it: tuneboard watch {study['id']}")
            if follow:
                state = _follow(client, study["id"], as_json)
                raise typer.Exit(code=0 if state == "completed" else 1)
        except (ApiError, ConfigError) as err:
            _client_fail(err)


@app.command()
def watch(study_id: int, as_json: JsonFlag = False) -> None:
    """Follow a study until it finishes (exit 0 if it completed, else 1)."""
    with _client() as client:
        try:
            state = _follow(client, study_id, as_json)
            if not as_json:
                best = client.study(study_id).get("best_trial")
                summary = f"Study {study_id} {state}"
                if best:
                    summary += f"; best trial #{best['number']}: {_fmt(best['value'])}"
                    summary += f" ({_fmt(best['params'])})"
                _out.print(escape(summary))
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    raise typer.Exit(code=0 if state == "completed" else 1)


@app.command()
def leaderboard(
    study_id: Annotated[
        int | None, typer.Argument(help="a study; without it, the team-wide leaderboard")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 10,
    accepted_only: Annotated[bool, typer.Option("--accepted-only")] = False,
    metric: Annotated[str | None, typer.Option(help="team-wide: only this metric")] = None,
    dataset: Annotated[str | None, typer.Option(help="team-wide: only this dataset")] = None,
    standard: Annotated[str | None, typer.Option(help='team-wide: "name" or "name@N"')] = None,
    as_json: JsonFlag = False,
) -> None:
    """A study's best trials, or the best trial of each of the team's studies."""
    with _client() as client:
        try:
            if study_id is not None:
                board = client.leaderboard(study_id, limit=limit, accepted_only=accepted_only)
                if as_json:
                    typer.echo(json.dumps(board))
                    return
                title = f"Study {study_id}: {board['metric']} ({board['direction']})"
                if board["multi_objective"]:
                    title += ", ranked by the first objective"
                table = Table(title=escape(title))
                for column in ("rank", "trial", "value", "accepted", "epochs", "params"):
                    table.add_column(column)
                for e in board["items"]:
                    table.add_row(str(e["rank"]), f"#{e['number']}", _fmt(e["value"]),
                                  _fmt(e["accepted"]), str(e["epochs_run"]),
                                  escape(_fmt(e["params"])))
            else:
                rows = client.team_leaderboard(limit=limit, metric=metric, dataset=dataset,
                                               standard=standard, accepted_only=accepted_only)
                if as_json:
                    typer.echo(json.dumps(rows))
                    return
                table = Table(title="Team leaderboard: best trial per study")
                for column in ("metric", "rank", "study", "dataset", "trial", "value",
                               "accepted", "params"):
                    table.add_column(column)
                for r in rows:
                    table.add_row(escape(f"{r['metric']} ({r['direction'][:3]})"), str(r["rank"]),
                                  escape(f"{r['study_id']} {r['study_name']}"),
                                  escape(_fmt(r["dataset"])), f"#{r['number']}", _fmt(r["value"]),
                                  _fmt(r["accepted"]), escape(_fmt(r["params"])))
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    _out.print(table)


@studies_app.command("list")
def studies_list(
    state: Annotated[str | None, typer.Option(help="queued, running, completed, ...")] = None,
    name: Annotated[str | None, typer.Option()] = None,
    standard: Annotated[str | None, typer.Option(help='"name" or "name@N"')] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
    as_json: JsonFlag = False,
) -> None:
    """The team's studies, newest first."""
    with _client() as client:
        try:
            rows = list(client.studies(state=state, name=name, standard=standard, limit=limit))
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table(title="Studies")
    for column in ("id", "name", "state", "metric", "standard", "complete", "pruned", "fail",
                   "active", "created"):
        table.add_column(column)
    for s in rows:
        c = s["counts"]
        table.add_row(str(s["id"]), escape(s["name"]), s["state"], escape(", ".join(s["metrics"])),
                      escape(_fmt(s["standard"])), str(c["complete"]), str(c["pruned"]),
                      str(c["fail"]), str(c["running"] + c["waiting"]), s["created_at"][:19])
    _out.print(table)


standards_app = typer.Typer(
    help="Standards: the team's versioned decision criteria, over the API.", no_args_is_help=True
)
app.add_typer(standards_app, name="standards")


class StandardsClient(TuneboardClient):
    """The standards endpoints of the API."""

    def standards(self) -> Iterator[dict[str, Any]]:
        return self._pages("/standards", {"limit": 200}, None)

    def standard(self, name: str, version: int | None = None) -> dict[str, Any]:
        path = f"/standards/{quote(name, safe='')}"
        if version is not None:
            path += f"/versions/{version}"
        result: dict[str, Any] = self._request("GET", path)
        return result

    def publish(self, document: dict[str, Any]) -> dict[str, Any]:
        """Version 1 of a new standard, or the next version of an existing one."""
        try:
            result: dict[str, Any] = self._request("POST", "/standards", json=document)
        except ApiError as err:
            if err.code != "conflict" or not isinstance(document.get("name"), str):
                raise
            path = f"/standards/{quote(document['name'], safe='')}/versions"
            result = self._request("POST", path, json=document)
        return result

    def diff(self, name: str, from_version: int, to_version: int) -> dict[str, Any]:
        params = {"from": from_version, "to": to_version}
        path = f"/standards/{quote(name, safe='')}/diff"
        result: dict[str, Any] = self._request("GET", path, params=params)
        return result

    def check(self, standard: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {"standard": standard, "spec": spec}
        result: dict[str, Any] = self._request("POST", "/standards/check", json=body)
        return result


def _standards_client() -> StandardsClient:
    try:
        client = StandardsClient.from_env()
    except ConfigError as err:
        _client_fail(err)
    assert isinstance(client, StandardsClient)
    return client


def _yaml_mapping(file: Path, what: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as err:
        _client_fail(ConfigError(f"{file}: not YAML or JSON: {err}"))
    if not isinstance(data, dict):
        _client_fail(ConfigError(f"{file}: {what} is a mapping"))
    return data


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None and v != {}}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _version_line(v: dict[str, Any]) -> str:
    return (
        f"{v['name']}@{v['version']}  {v['status']}  {v['author']}  {v['created_at'][:19]}  "
        f"{v['changelog']}"
    )


@standards_app.command("list")
def standards_list(as_json: JsonFlag = False) -> None:
    """The team's standards, each at its newest version."""
    client = _standards_client()
    with client:
        try:
            rows = list(client.standards())
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table(title="Standards")
    for column in ("name", "version", "status", "rules", "criteria", "author", "created",
                   "changelog"):
        table.add_column(column)
    for v in rows:
        doc = v["document"]
        table.add_row(escape(v["name"]), str(v["version"]), v["status"],
                      str(len(doc["rules"])), str(len(doc["acceptance"])), escape(v["author"]),
                      v["created_at"][:19], escape(v["changelog"]))
    _out.print(table)


@standards_app.command("show")
def standards_show(
    name: str,
    version: Annotated[int | None, typer.Option(min=1, help="default: the newest")] = None,
    as_json: JsonFlag = False,
) -> None:
    """A standard's document (as YAML you could publish) and its versions."""
    client = _standards_client()
    with client:
        try:
            shown = client.standard(name, version)
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    if as_json:
        typer.echo(json.dumps(shown))
        return
    _out.print(escape(f"# {_version_line(shown)}"))
    typer.echo(yaml.safe_dump(_without_nulls(shown["document"]), sort_keys=False).rstrip())
    for v in shown.get("versions", []):
        _out.print(escape(f"#   {_version_line({'name': shown['name'], **v})}"))


@standards_app.command("publish")
def standards_publish(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="standard document, YAML or JSON")
    ],
    changelog: Annotated[str | None, typer.Option(help="what this version changes")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Publish a standard: version 1 if the team has none by its name, else the next version
    (maintainer role)."""
    document = _yaml_mapping(file, "a standard (name, rules, defaults, acceptance)")
    if changelog is not None:
        document["changelog"] = changelog
    client = _standards_client()
    with client:
        try:
            published = client.publish(document)
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    if as_json:
        typer.echo(json.dumps(published))
    else:
        _out.print(escape(f"Published {_version_line(published)}"))


def _change(before: Any, after: Any) -> str:
    return f"{json.dumps(before)} -> {json.dumps(after)}"


def _diff_lines(d: dict[str, Any]) -> list[str]:
    lines = []
    description = d.get("description")
    if description:
        lines.append(f"description: {_change(description['before'], description['after'])}")
    for rule in d["rules"]["added"]:
        lines.append(f"+ rule {rule['param']}: {json.dumps(_without_nulls(rule))}")
    for rule in d["rules"]["removed"]:
        lines.append(f"- rule {rule['param']}: {json.dumps(_without_nulls(rule))}")
    for rule in d["rules"]["changed"]:
        for field, c in rule["changes"].items():
            lines.append(f"~ rule {rule['param']}.{field}: {_change(c['before'], c['after'])}")
    for c in d["defaults"]:
        lines.append(f"~ defaults.{c['path']} ({c['kind']}): {_change(c['before'], c['after'])}")
    for criterion in d["acceptance"]["added"]:
        lines.append(f"+ acceptance: {json.dumps(criterion)}")
    for criterion in d["acceptance"]["removed"]:
        lines.append(f"- acceptance: {json.dumps(criterion)}")
    return lines


@standards_app.command("diff")
def standards_diff(
    name: str,
    from_version: Annotated[int, typer.Option("--from", min=1, help="the older version")],
    to_version: Annotated[int, typer.Option("--to", min=1, help="the newer version")],
    as_json: JsonFlag = False,
) -> None:
    """What changed between two versions of a standard."""
    client = _standards_client()
    with client:
        try:
            changes = client.diff(name, from_version, to_version)
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    if as_json:
        typer.echo(json.dumps(changes))
        return
    _out.print(escape(f"{name}@{from_version} -> {name}@{to_version}"))
    for line in _diff_lines(changes) or ["no changes"]:
        _out.print(escape(f"  {line}"))


@standards_app.command("check")
def standards_check(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="study spec, YAML or JSON")
    ],
    standard: Annotated[
        str | None, typer.Option(help='"name" or "name@N"; default: the spec\'s `standard`')
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check a study spec against a standard without creating anything. Exits 1 when the
    spec breaks a rule and carries no override."""
    spec = _yaml_mapping(file, "a study spec (name, objective, ...)")
    ref = standard or spec.get("standard")
    if not isinstance(ref, str):
        _client_fail(ConfigError("no standard: pass --standard or name one in the spec"))
    client = _standards_client()
    with client:
        try:
            report = client.check(ref, spec)
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    if as_json:
        typer.echo(json.dumps(report))
    else:
        verdict = "keeps" if report["ok"] else "breaks"
        _out.print(escape(f"The spec {verdict} {report['standard']} ({report['status']})"))
        for v in report["violations"]:
            why = f" ({v['rationale']})" if v["rationale"] else ""
            _out.print(escape(f"  x {v['rule']}: {v['reason']}{why}"))
        if report["override"]:
            _out.print(escape(f"  overridden: {report['override']}"))
        for warning in report["warnings"]:
            _out.print(escape(f"  warning: {warning}"))
        if report["defaults_applied"]:
            _out.print(escape(f"  defaults filled in: {', '.join(report['defaults_applied'])}"))
    if not report["admissible"]:
        raise typer.Exit(code=1)


if __name__ == "__main__":
    app()
