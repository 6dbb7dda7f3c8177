"""How the client commands show the API's answers: values, tables, progress and error lines.

Everything here turns JSON from the API into text or rich tables; nothing talks to the API.
Text taken from the API is escaped, so a study named ``[red]x`` prints as itself.
"""

from __future__ import annotations

import json
import time
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from tuneboard.client import ApiError
from tuneboard.spec.states import TrialState


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v)}" for k, v in value.items())
    return str(value)


def error_lines(err: Exception) -> list[str]:
    """An error as one block of console markup: a 422 names each bad field once, with why."""
    if not isinstance(err, ApiError):
        return [f"[red]error[/red] {escape(str(err))}"]
    head = f"[red]error[/red] {err.status} {escape(err.code)}"
    problems = err.problems
    if problems:
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        return [f"{head}: {count}"] + [
            f"  {escape(field)}: {escape(reason)}" for field, reason in problems
        ]
    lines = [f"{head}: {escape(err.message)}"]
    if err.details:
        lines.append(escape(json.dumps(err.details, indent=2)))
    return lines


def progress_line(data: dict[str, Any]) -> str:
    counts = data["counts"]
    return (
        f"{time.strftime('%H:%M:%S')}  {data['state']:<9}  complete {counts['complete']}  "
        f"pruned {counts['pruned']}  fail {counts['fail']}  running {counts['running']}  "
        f"waiting {counts['waiting']}  best {fmt(data.get('best_value'))}"
    )


def submitted_lines(study: dict[str, Any]) -> list[str]:
    pairs = zip(study["metrics"], study["directions"], strict=False)
    metrics = ", ".join(f"{m} ({d})" for m, d in pairs)
    lines = [
        f"Study {study['id']} [bold]{escape(study['name'])}[/bold] "
        f"{study['state']}: {escape(metrics)}"
    ]
    if study.get("standard"):
        lines.append(f"  standard {escape(study['standard'])}")
    return lines


def watch_summary(study_id: int, state: str, best: dict[str, Any] | None) -> str:
    summary = f"Study {study_id} {state}"
    if best:
        summary += f"; best trial #{best['number']}: {fmt(best['value'])} ({fmt(best['params'])})"
    return escape(summary)


def budget_trials(study: dict[str, Any]) -> int | None:
    """The study's ``budget.n_trials``, from the spec the API returns."""
    n = ((study.get("spec") or {}).get("budget") or {}).get("n_trials")
    return n if isinstance(n, int) else None


def finished_of(study: dict[str, Any], counts: dict[str, int]) -> tuple[int, int]:
    """(finished trials, what they count towards): the budget, or every trial when more exist
    (trials enqueued by hand and retries are outside the budget)."""
    finished = sum(counts.get(s, 0) for s in TrialState.finished())
    active = sum(counts.get(s, 0) for s in TrialState.active())
    return finished, max(budget_trials(study) or 0, finished + active)


def counts_text(counts: dict[str, int]) -> str:
    return (
        f"complete {counts.get(TrialState.COMPLETE, 0)}  pruned {counts.get(TrialState.PRUNED, 0)}"
        f"  failed {counts.get(TrialState.FAIL, 0)}  running {counts.get(TrialState.RUNNING, 0)}"
        f"  waiting {counts.get(TrialState.WAITING, 0)}"
    )


def trial_values(study: dict[str, Any], trial: dict[str, Any]) -> str:
    """A trial's objective value, or each objective's named by its metric."""
    metrics = study.get("metrics") or []
    if len(metrics) <= 1:
        return fmt(trial.get("value"))
    values = trial.get("values") or []
    return ", ".join(f"{m} {fmt(v)}" for m, v in zip(metrics, values, strict=False)) or "-"


def best_text(study: dict[str, Any], best: dict[str, Any] | None) -> str:
    if not best:
        return "best  -  (no complete trial yet)"
    metrics = study.get("metrics") or ["value"]
    head = (
        f"best {metrics[0]} {fmt(best.get('value'))}" if len(metrics) == 1
        else f"best by {metrics[0]}: {trial_values(study, best)}"
    )
    params = fmt(best.get("params") or {})
    return f"{head}  (trial #{best['number']})" + (f"  {params}" if params else "")


def watch_display(
    study: dict[str, Any], progress: dict[str, Any] | None, best: dict[str, Any] | None
) -> RenderableType:
    """The live view of ``watch`` in a terminal: progress of the budget, counts, best so far."""
    counts = (progress or study)["counts"]
    state = (progress or study)["state"]
    finished, total = finished_of(study, counts)
    bar = Table.grid(padding=(0, 1))
    bar.add_row(ProgressBar(total=max(total, 1), completed=finished, width=40),
                Text(f"{finished}/{total} finished"))
    return Group(
        Text.assemble((f"Study {study['id']} {study['name']}", "bold"), f"  {state}"),
        bar,
        Text(counts_text(counts)),
        Text(best_text(study, best)),
    )


def study_grid(study: dict[str, Any]) -> Table:
    """``studies show``: one study's state, objective, progress and best trial."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    pairs = zip(study["metrics"], study["directions"], strict=False)
    finished, total = finished_of(study, study["counts"])
    rows = [
        ("study", f"{study['id']} {study['name']}"),
        ("state", study["state"]),
        ("objective", ", ".join(f"{m} ({d})" for m, d in pairs)),
        ("standard", fmt(study.get("standard"))),
        ("trials", f"{finished}/{total} finished: {counts_text(study['counts'])}"),
        ("best", best_text(study, study.get("best_trial")).removeprefix("best ")),
        ("created", f"{study['created_at'][:19]} by {fmt(study.get('created_by'))}"),
        ("started", fmt(study.get("started_at"))[:19]),
        ("finished", fmt(study.get("finished_at"))[:19]),
    ]
    if study.get("override_reason"):
        rows.append(("override", study["override_reason"]))
    if study.get("error"):
        rows.append(("error", study["error"]))
    for key, value in rows:
        grid.add_row(key, Text(value))
    return grid


def trials_table(study: dict[str, Any], rows: list[dict[str, Any]]) -> Table:
    metrics = study["metrics"]
    table = _table(
        f"Study {study['id']} {study['name']}: trials",
        ("trial", "state", metrics[0] if len(metrics) == 1 else "values", "epochs", "accepted",
         "device", "params"),
    )
    for t in rows:
        table.add_row(f"#{t['number']}", t["state"], escape(trial_values(study, t)),
                      str(t["epochs_run"]), fmt(t["accepted"]), escape(fmt(t["device"])),
                      escape(fmt(t["params"])))
    return table


def notes_table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = _table(title, ("note", "on", "author", "written", "text"))
    for n in rows:
        on = "study" if n["trial_number"] is None else f"trial #{n['trial_number']}"
        table.add_row(str(n["id"]), on, escape(n["author"]), n["created_at"][:19],
                      Text(n["body"]))
    return table


def _table(title: str, columns: tuple[str, ...]) -> Table:
    table = Table(title=escape(title))
    for column in columns:
        table.add_column(column)
    return table


def study_leaderboard_table(study_id: int, board: dict[str, Any]) -> Table:
    title = f"Study {study_id}: {board['metric']} ({board['direction']})"
    if board["multi_objective"]:
        title += ", ranked by the first objective"
    table = _table(title, ("rank", "trial", "value", "accepted", "epochs", "params"))
    for e in board["items"]:
        table.add_row(str(e["rank"]), f"#{e['number']}", fmt(e["value"]), fmt(e["accepted"]),
                      str(e["epochs_run"]), escape(fmt(e["params"])))
    return table


def team_leaderboard_table(rows: list[dict[str, Any]]) -> Table:
    table = _table(
        "Team leaderboard: best trial per study",
        ("metric", "rank", "study", "dataset", "trial", "value", "accepted", "params"),
    )
    for r in rows:
        table.add_row(escape(f"{r['metric']} ({r['direction'][:3]})"), str(r["rank"]),
                      escape(f"{r['study_id']} {r['study_name']}"), escape(fmt(r["dataset"])),
                      f"#{r['number']}", fmt(r["value"]), fmt(r["accepted"]),
                      escape(fmt(r["params"])))
    return table


def studies_table(rows: list[dict[str, Any]]) -> Table:
    table = _table(
        "Studies",
        ("id", "name", "state", "metric", "standard", "complete", "pruned", "fail", "active",
         "created"),
    )
    for s in rows:
        c = s["counts"]
        table.add_row(str(s["id"]), escape(s["name"]), s["state"], escape(", ".join(s["metrics"])),
                      escape(fmt(s["standard"])), str(c["complete"]), str(c["pruned"]),
                      str(c["fail"]), str(c["running"] + c["waiting"]), s["created_at"][:19])
    return table


def standards_table(rows: list[dict[str, Any]]) -> Table:
    table = _table(
        "Standards",
        ("name", "version", "status", "rules", "criteria", "author", "created", "changelog"),
    )
    for v in rows:
        doc = v["document"]
        table.add_row(escape(v["name"]), str(v["version"]), v["status"],
                      str(len(doc["rules"])), str(len(doc["acceptance"])), escape(v["author"]),
                      v["created_at"][:19], escape(v["changelog"]))
    return table


def without_nulls(value: Any) -> Any:
    """A standard's document without its unset fields, as a maintainer would write it."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None and v != {}}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def version_line(v: dict[str, Any]) -> str:
    return (
        f"{v['name']}@{v['version']}  {v['status']}  {v['author']}  {v['created_at'][:19]}  "
        f"{v['changelog']}"
    )


def _change(before: Any, after: Any) -> str:
    return f"{json.dumps(before)} -> {json.dumps(after)}"


def diff_lines(d: dict[str, Any]) -> list[str]:
    lines = []
    description = d.get("description")
    if description:
        lines.append(f"description: {_change(description['before'], description['after'])}")
    for rule in d["rules"]["added"]:
        lines.append(f"+ rule {rule['param']}: {json.dumps(without_nulls(rule))}")
    for rule in d["rules"]["removed"]:
        lines.append(f"- rule {rule['param']}: {json.dumps(without_nulls(rule))}")
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


def check_lines(report: dict[str, Any]) -> list[str]:
    verdict = "keeps" if report["ok"] else "breaks"
    lines = [f"The spec {verdict} {report['standard']} ({report['status']})"]
    for v in report["violations"]:
        why = f" ({v['rationale']})" if v["rationale"] else ""
        lines.append(f"  x {v['rule']}: {v['reason']}{why}")
    if report["override"]:
        lines.append(f"  overridden: {report['override']}")
    for warning in report["warnings"]:
        lines.append(f"  warning: {warning}")
    if report["defaults_applied"]:
        lines.append(f"  defaults filled in: {', '.join(report['defaults_applied'])}")
    return [escape(line) for line in lines]
