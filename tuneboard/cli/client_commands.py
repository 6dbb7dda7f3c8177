"""Client commands: thin HTTP clients of the API, run from anywhere the API can be reached.

They read ``TUNEBOARD_URL`` (default http://127.0.0.1:8000) and ``TUNEBOARD_API_KEY`` (else the
key file ``$TUNEBOARD_HOME/api-key`` that ``tuneboard up`` writes) and touch no database.
Errors go to stderr as one block and exit 1; ``--json`` prints the API's own JSON instead of
tables.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from rich.console import Console
from rich.live import Live
from rich.markup import escape

from tuneboard.cli import render
from tuneboard.client import ApiError, ConfigError, TuneboardClient
from tuneboard.spec.states import StudyState

CLIENT_EPILOG = (
    "Talks to the API at TUNEBOARD_URL (default http://127.0.0.1:8000) with the key in "
    "TUNEBOARD_API_KEY (else $TUNEBOARD_HOME/api-key, written by `tuneboard up`)."
)

app = typer.Typer()
studies_app = typer.Typer(
    help="Studies, over the API.", epilog=CLIENT_EPILOG, no_args_is_help=True
)
standards_app = typer.Typer(
    help="Standards: the team's versioned decision criteria, over the API.",
    epilog=CLIENT_EPILOG,
    no_args_is_help=True,
)
notes_app = typer.Typer(
    help="Notes on studies and trials, over the API.", epilog=CLIENT_EPILOG, no_args_is_help=True
)
app.add_typer(studies_app, name="studies")
app.add_typer(standards_app, name="standards")
app.add_typer(notes_app, name="notes")

_out = Console(highlight=False)
# Errors are not wrapped to the terminal's width: a path or a field name stays whole, to copy.
_err = Console(stderr=True, highlight=False, soft_wrap=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="print the API's JSON instead")]
SpecFile = Annotated[
    Path, typer.Argument(exists=True, dir_okay=False, help="study spec, YAML or JSON")
]


def _client_fail(err: Exception) -> NoReturn:
    for line in render.error_lines(err):
        _err.print(line)
    raise typer.Exit(code=1)


def _client() -> TuneboardClient:
    try:
        return TuneboardClient.from_env()
    except ConfigError as err:
        _client_fail(err)


def _yaml_mapping(file: Path, what: str) -> dict[str, Any]:
    """The mapping in a YAML (or JSON) file; a file that is not one fails naming its line."""
    try:
        with file.open(encoding="utf-8") as stream:
            data = yaml.safe_load(stream)
    except yaml.MarkedYAMLError as err:
        _client_fail(ConfigError(_yaml_problem(file, err)))
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as err:
        _client_fail(ConfigError(f"{file}: not YAML or JSON: {err}"))
    if not isinstance(data, dict):
        _client_fail(ConfigError(f"{file}: {what} is a mapping"))
    return data


def _yaml_problem(file: Path, err: yaml.MarkedYAMLError) -> str:
    mark = err.problem_mark or err.context_mark
    where = f"{file}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(file)
    reason = ", ".join(part for part in (err.context, err.problem) if part) or "invalid"
    return f"{where}: not YAML or JSON: {reason}"


def _follow(client: TuneboardClient, study_id: int, as_json: bool) -> StudyState:
    """Follow the study's progress events until it finishes; returns its final state.

    In a terminal: a live display (``render.watch_display``). Otherwise a line per change, or
    with ``as_json`` each event as a JSON line.
    """
    if not as_json and _out.is_terminal:
        return _follow_live(client, study_id)
    while True:
        for event, data in client.events(study_id):
            if as_json:
                typer.echo(json.dumps({"event": event, "data": data}))
            elif event == "progress":
                _out.print(render.progress_line(data))
        state = StudyState(client.study(study_id)["state"])
        if state.is_finished():
            return state


def _follow_live(client: TuneboardClient, study_id: int) -> StudyState:
    study = client.study(study_id)
    best = study.get("best_trial")
    best_value = best["value"] if best else None
    progress: dict[str, Any] | None = None
    with Live(render.watch_display(study, progress, best), console=_out,
              refresh_per_second=4) as live:
        while True:
            for event, data in client.events(study_id):
                if event != "progress":
                    continue
                progress = data
                if data.get("best_value") != best_value:
                    # The event carries the best value only; its trial and params are read once
                    # per change.
                    best = client.study(study_id).get("best_trial")
                    best_value = data.get("best_value")
                live.update(render.watch_display(study, progress, best))
            study = client.study(study_id)
            best, progress = study.get("best_trial"), None
            live.update(render.watch_display(study, progress, best))
            state = StudyState(study["state"])
            if state.is_finished():
                return state


@app.command(epilog=CLIENT_EPILOG)
def submit(
    file: SpecFile,
    idempotency_key: Annotated[
        str | None, typer.Option(help="resubmitting with the same key returns the same study")
    ] = None,
    follow: Annotated[bool, typer.Option("--watch", help="then follow it until it ends")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Submit a study (POST /api/v1/studies); prints its id."""
    spec = _yaml_mapping(file, "a study spec (name, objective, ...)")
    with _client() as client:
        try:
            study = client.submit(spec, idempotency_key)
            if as_json:
                typer.echo(json.dumps(study))
            else:
                for line in render.submitted_lines(study):
                    _out.print(line)
                if not follow:
                    _out.print(f"  follow it: tuneboard watch {study['id']}")
            if follow:
                state = _follow(client, study["id"], as_json)
                raise typer.Exit(code=0 if state is StudyState.COMPLETED else 1)
        except (ApiError, ConfigError) as err:
            _client_fail(err)


@app.command(epilog=CLIENT_EPILOG)
def watch(study_id: int, as_json: JsonFlag = False) -> None:
    """Follow a study until it finishes (exit 0 if it completed, else 1)."""
    with _client() as client:
        try:
            state = _follow(client, study_id, as_json)
            if not as_json:
                best = client.study(study_id).get("best_trial")
                _out.print(render.watch_summary(study_id, state, best))
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    raise typer.Exit(code=0 if state is StudyState.COMPLETED else 1)


@app.command(epilog=CLIENT_EPILOG)
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
                table = render.study_leaderboard_table(study_id, board)
            else:
                rows = client.team_leaderboard(limit=limit, metric=metric, dataset=dataset,
                                               standard=standard, accepted_only=accepted_only)
                if as_json:
                    typer.echo(json.dumps(rows))
                    return
                table = render.team_leaderboard_table(rows)
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    _out.print(table)


@studies_app.command("list", epilog=CLIENT_EPILOG)
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
    _out.print(render.studies_table(rows))


@studies_app.command("show", epilog=CLIENT_EPILOG)
def studies_show(study_id: int, as_json: JsonFlag = False) -> None:
    """One study: state, objective, standard, progress of its budget, best trial."""
    with _client() as client:
        try:
            study = client.study(study_id)
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    if as_json:
        typer.echo(json.dumps(study))
        return
    _out.print(render.study_grid(study))


@app.command(epilog=CLIENT_EPILOG)
def trials(
    study_id: int,
    state: Annotated[
        str | None, typer.Option(help="waiting, running, complete, pruned or fail")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """A study's trials by number: state, value(s), epochs, verdict, device, params."""
    with _client() as client:
        try:
            study = client.study(study_id)
            rows = list(client.trials(study_id, state=state))
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    _out.print(render.trials_table(study, rows))


@app.command(epilog=CLIENT_EPILOG)
def cancel(study_id: int, as_json: JsonFlag = False) -> None:
    """Cancel a study: no more trials start; running ones stop within an epoch."""
    with _client() as client:
        try:
            accepted = client.cancel(study_id)
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    if as_json:
        typer.echo(json.dumps(accepted))
    else:
        _out.print(f"Study {accepted['id']} {accepted['state']}")


class ExportFormat(StrEnum):
    """The formats ``GET /studies/{id}/trials/export`` writes."""

    CSV = "csv"
    PARQUET = "parquet"


@app.command(epilog=CLIENT_EPILOG)
def export(
    study_id: int,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="file format")] = ExportFormat.CSV,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", dir_okay=False, help="write here instead of to stdout"),
    ] = None,
) -> None:
    """A study's trials as CSV or Parquet, one row per trial.

    Columns: number, state, the objective value(s) named by metric, param_<name> per
    parameter, metric_<name> (the last value of each per-epoch metric), epochs_run, attempt,
    retry_of, accepted, device, datetime_start, datetime_complete.
    """
    if output is None and fmt is ExportFormat.PARQUET and sys.stdout.isatty():
        _client_fail(ConfigError("parquet is binary: pass -o FILE, or redirect stdout"))
    with _client() as client:
        try:
            if output is None:
                client.export(study_id, sys.stdout.buffer, fmt=fmt.value)
                sys.stdout.buffer.flush()
                return
            written = _export_to(client, study_id, fmt.value, output)
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    _out.print(escape(f"Wrote study {study_id}'s trials to {output} ({written} bytes)"))


def _export_to(client: TuneboardClient, study_id: int, fmt: str, output: Path) -> int:
    """Export into ``output`` through a temporary file, so a failure leaves no partial file."""
    partial = output.with_name(output.name + ".part")
    try:
        with partial.open("wb") as stream:
            written = client.export(study_id, stream, fmt=fmt)
        partial.replace(output)
    except OSError as err:
        partial.unlink(missing_ok=True)
        _client_fail(ConfigError(f"{output}: cannot write: {err.strerror or err}"))
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return written


TrialOption = Annotated[int | None, typer.Option("--trial", min=0, help="a trial's number")]


@notes_app.command("add", epilog=CLIENT_EPILOG)
def notes_add(
    study_id: int,
    text: Annotated[str, typer.Argument(help='the note; "-" reads it from stdin')],
    trial: TrialOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Add a note to a study, or with --trial to one of its trials (member role)."""
    body = sys.stdin.read() if text == "-" else text
    with _client() as client:
        try:
            note = client.add_note(study_id, body, trial=trial)
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    if as_json:
        typer.echo(json.dumps(note))
    else:
        on = f"trial #{trial} of study {study_id}" if trial is not None else f"study {study_id}"
        _out.print(f"Note {note['id']} added to {on}")


@notes_app.command("list", epilog=CLIENT_EPILOG)
def notes_list(
    study_id: int,
    trial: TrialOption = None,
    limit: Annotated[int, typer.Option(min=1)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """A study's notes (on it and on its trials), or one trial's, newest first."""
    with _client() as client:
        try:
            rows = list(client.notes(study_id, trial=trial, limit=limit))
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    title = f"Study {study_id}" + (f", trial #{trial}" if trial is not None else "") + ": notes"
    _out.print(render.notes_table(title, rows))


@standards_app.command("list", epilog=CLIENT_EPILOG)
def standards_list(as_json: JsonFlag = False) -> None:
    """The team's standards, each at its newest version."""
    with _client() as client:
        try:
            rows = list(client.standards())
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    _out.print(render.standards_table(rows))


@standards_app.command("show", epilog=CLIENT_EPILOG)
def standards_show(
    name: str,
    version: Annotated[int | None, typer.Option(min=1, help="default: the newest")] = None,
    as_json: JsonFlag = False,
) -> None:
    """A standard's document (as YAML you could publish) and its versions."""
    with _client() as client:
        try:
            shown = client.standard(name, version)
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    if as_json:
        typer.echo(json.dumps(shown))
        return
    _out.print(escape(f"# {render.version_line(shown)}"))
    typer.echo(yaml.safe_dump(render.without_nulls(shown["document"]), sort_keys=False).rstrip())
    for v in shown.get("versions", []):
        _out.print(escape(f"#   {render.version_line({'name': shown['name'], **v})}"))


@standards_app.command("publish", epilog=CLIENT_EPILOG)
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
    with _client() as client:
        try:
            published = client.publish_standard(document)
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    if as_json:
        typer.echo(json.dumps(published))
    else:
        _out.print(escape(f"Published {render.version_line(published)}"))


@standards_app.command("diff", epilog=CLIENT_EPILOG)
def standards_diff(
    name: str,
    from_version: Annotated[int, typer.Option("--from", min=1, help="the older version")],
    to_version: Annotated[int, typer.Option("--to", min=1, help="the newer version")],
    as_json: JsonFlag = False,
) -> None:
    """What changed between two versions of a standard."""
    with _client() as client:
        try:
            changes = client.diff_standard(name, from_version, to_version)
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    if as_json:
        typer.echo(json.dumps(changes))
        return
    _out.print(escape(f"{name}@{from_version} -> {name}@{to_version}"))
    for line in render.diff_lines(changes) or ["no changes"]:
        _out.print(escape(f"  {line}"))


@standards_app.command("check", epilog=CLIENT_EPILOG)
def standards_check(
    file: SpecFile,
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
    with _client() as client:
        try:
            report = client.check_standard(ref, spec)
        except (ApiError, ConfigError) as err:
            _client_fail(err)
    if as_json:
        typer.echo(json.dumps(report))
    else:
        for line in render.check_lines(report):
            _out.print(line)
    if not report["admissible"]:
        raise typer.Exit(code=1)
