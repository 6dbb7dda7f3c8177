"""The study, trial and comparison pages in headless chromium, over a live server."""

from __future__ import annotations

import csv
import random
import time
from pathlib import Path
from typing import Any

import httpx
import optuna
import pytest

from tests.api.conftest import API, Team, spec
from tests.api.test_standards_api import NAME, STANDARD
from tests.api.ui.conftest import (
    SPACE,
    Tab,
    finish,
    get,
    optuna_study,
    post,
    report_epochs,
    run_study,
)
from tuneboard.db import session_scope
from tuneboard.db.models import Study
from tuneboard.optimization.storage import SqlStorage
from tuneboard.studies import service as studies
from tuneboard.studies.schemas import TrialTable

STUDY_CHARTS = ("history", "curves", "parallel", "slice", "contour", "edf", "timeline",
                "importance")
TRACEBACK = 'Traceback (most recent call last):\n  File "train.py", line 3\nRuntimeError: boom'


def single_objective(server: str, team: Team, db_url: str, n: int = 6) -> tuple[int, list[int]]:
    post(server, team, "/standards", STANDARD, role="maintainer")
    body = spec(standard=NAME, budget={"n_trials": n, "max_parallel": n})
    study_id = post(server, team, "/studies", body)["id"]
    outcomes: list[Any] = [0.95, 0.98, None, 0.99, TRACEBACK, 0.9][:n]
    return study_id, run_study(db_url, study_id, outcomes)


def multi_objective(server: str, team: Team, db_url: str) -> int:
    post(server, team, "/standards", STANDARD, role="maintainer")
    body = spec(standard=NAME, sampler={"type": "nsga2", "seed": 0}, pruner={"type": "none"},
                budget={"n_trials": 5, "max_parallel": 5})
    body["objective"] = {**body["objective"], "metric": ["val_accuracy", "epoch_time_s"],
                         "direction": ["maximize", "minimize"]}
    study_id = post(server, team, "/studies", body)["id"]
    run_study(db_url, study_id, [(0.97, 2.0), (0.99, 5.0), (0.8, 1.0), (0.6, 0.5), (0.98, 3.0)])
    return study_id


def test_plotly_is_served_from_the_package_with_caching(server: str) -> None:
    page = httpx.get(f"{server}/ui/studies/1")
    src = page.text.split('href="/ui/vendor/plotly-', 1)[1].split('"', 1)[0]
    js = httpx.get(f"{server}/ui/vendor/plotly-{src}", headers={"Accept-Encoding": "gzip"})
    assert js.status_code == 200 and "immutable" in js.headers["cache-control"]
    assert js.headers["content-encoding"] == "gzip" and "plotly" in js.text[:2000].lower()
    assert "cdn" not in page.text.lower()


def test_finished_single_objective_study(
    server: str, team: Team, db_url: str, tab: Any
) -> None:
    study_id, numbers = single_objective(server, team, db_url)
    assert get(server, team, f"/studies/{study_id}")["state"] == "completed"
    t: Tab = tab()
    page = t.open(f"/ui/studies/{study_id}")
    page.wait_for_selector("body[data-ready]")
    # A chart is drawn when it scrolls near: the timeline, far below the first screen, not yet.
    assert page.evaluate("() => document.querySelector('[data-chart=\"timeline\"]').data") is None
    t.wait_charts(*STUDY_CHARTS)
    # Every chart has data; the history carries the 4 complete trials and its best-so-far line.
    assert t.chart_points("history") == 8
    assert t.chart_trials("timeline") == set(numbers)
    assert page.locator("#pareto-panel").is_hidden()
    # The curves open on the study's metric, not the first name in alphabetical order.
    assert page.locator("#curve-metric").input_value() == "val_accuracy"
    assert page.locator("#chart-importance .empty").count() == 0
    # The trials table: params as columns, sortable and filterable.
    heads = page.locator("#trials .sort-row th").all_inner_texts()
    assert {"lr", "optimizer", "hidden", "val_accuracy"} <= {h.strip(" ▲▼") for h in heads}
    assert page.locator("#trials tbody tr").count() == 6
    # A number column sorts descending first, then ascending.
    page.locator("#trials .sort-row th", has_text="val_accuracy").click()
    first = page.locator("#trials tbody tr").first.get_attribute("data-number")
    assert first == str(numbers[3])  # 0.99
    page.locator("#trials .sort-row th", has_text="val_accuracy").click()
    first = page.locator("#trials tbody tr").first.get_attribute("data-number")
    assert first == str(numbers[5])  # 0.9
    value_filter = page.locator("#trials .filter-row input").nth(heads.index("val_accuracy"))
    value_filter.fill(">0.96")
    page.wait_for_function("document.querySelectorAll('#trials tbody tr').length === 2")
    value_filter.fill("")
    page.select_option("#trial-state", "fail")
    page.wait_for_function("document.querySelectorAll('#trials tbody tr').length === 1")
    # The x-axis title of the curves sits below its tick labels, not over them.
    overlap = page.evaluate("""() => {
        const gd = document.querySelector('[data-chart="curves"]');
        const title = gd.querySelector('.g-xtitle').getBoundingClientRect();
        const ticks = [...gd.querySelectorAll('.xtick text')].map(e => e.getBoundingClientRect());
        return ticks.some(r => r.bottom > title.top && r.top < title.bottom
                             && r.right > title.left && r.left < title.right);
    }""")
    assert not overlap
    t.screenshot("study-single")
    assert t.errors == []


def test_parallel_coordinates_past_the_cap_show_a_labelled_sample_or_all(
    server: str, team: Team, db_url: str, tab: Any
) -> None:
    n = 1001  # one past the chart's cap
    study_id = post(server, team, "/studies", spec(budget={"n_trials": n, "max_parallel": 1}))["id"]
    rng = random.Random(0)
    values = [rng.random() for _ in range(n)]
    SqlStorage(db_url).add_trials(optuna_study(db_url, study_id)._study_id, [
        optuna.trial.create_trial(value=v, distributions=SPACE, params={
            "lr": 10 ** rng.uniform(-5, -1), "optimizer": rng.choice(["sgd", "adam", "adamw"]),
            "hidden": 32 * rng.randint(1, 8)})
        for v in values
    ])
    t: Tab = tab()
    page = t.open(f"/ui/studies/{study_id}")
    t.wait_charts("parallel")
    objective = """() => document.querySelector('[data-chart="parallel"]').data[0]
        .dimensions.at(-1).values"""
    # A sample, and it says so: the best half of the cap by the objective, the rest spread out.
    assert t.chart_points("parallel") == 1000
    note = page.locator("#parallel-note").inner_text()
    assert "sample" in note and "best 500 by val_accuracy" in note and "1,000 of 1,001" in note
    shown = sorted(page.evaluate(objective), reverse=True)
    assert shown[:500] == sorted(values, reverse=True)[:500]
    button = page.locator("#parallel-all")
    assert button.inner_text() == "show all 1,001"
    button.click()
    page.wait_for_function("""() => document.querySelector('[data-chart="parallel"]').data[0]
        .dimensions[0].values.length === 1001""")
    assert page.locator("#parallel-note").inner_text() == "Showing all 1,001 complete trials."
    assert sorted(page.evaluate(objective)) == sorted(values)
    assert button.inner_text() == "show a sample"
    button.click()
    page.wait_for_function("""() => document.querySelector('[data-chart="parallel"]').data[0]
        .dimensions[0].values.length === 1000""")
    assert t.errors == []


def test_multi_objective_study_shows_the_pareto_front(
    server: str, team: Team, db_url: str, tab: Any
) -> None:
    study_id = multi_objective(server, team, db_url)
    t: Tab = tab()
    page = t.open(f"/ui/studies/{study_id}")
    t.wait_charts(*STUDY_CHARTS, "pareto")
    pareto = page.evaluate("""() => {
        const gd = document.querySelector('[data-chart="pareto"]');
        return {names: gd.data.map(d => [d.name, d.x.length]),
                x: gd.layout.xaxis.title.text, y: gd.layout.yaxis.title.text};
    }""")
    assert pareto["x"] == "val_accuracy (max)" and pareto["y"] == "epoch_time_s (min)"
    traces = dict(pareto["names"])
    # (0.99, 5), (0.98, 3), (0.97, 2), (0.8, 1), (0.6, 0.5) are all non-dominated...
    assert traces["Pareto front"] == 5
    # ...and the accepted ones (val_accuracy >= 0.97 with a small gap) are marked.
    assert traces["accepted"] == 3
    # The history has both objectives, each with its best-so-far line.
    names = page.evaluate(
        "() => document.querySelector('[data-chart=\"history\"]').data.map(d => d.name)")
    assert names == ["val_accuracy", "best val_accuracy", "epoch_time_s", "best epoch_time_s"]
    # Importance and the slice follow the chosen objective; the history, which shows every
    # objective, keeps its plot.
    page.evaluate("() => { window.historyPlot = document.querySelector("
                  "'[data-chart=\"history\"]')._fullLayout; }")
    page.select_option("#objective", "1")
    page.wait_for_function(
        "document.querySelector('#importance-note').textContent.includes('epoch_time_s')")
    page.locator('[data-chart="slice"]').scroll_into_view_if_needed()
    page.wait_for_function("document.querySelector('[data-chart=\"slice\"]')"
                           ".layout.yaxis.title.text === 'epoch_time_s (min)'")
    assert page.evaluate("() => document.querySelector('[data-chart=\"history\"]')"
                         "._fullLayout === window.historyPlot")
    heads = page.locator("#leaderboard thead th").all_inner_texts()
    assert "val_accuracy" in heads and "epoch_time_s" in heads
    t.screenshot("study-multi")
    assert t.errors == []


def test_trial_page_shows_verdict_error_and_attempts(
    server: str, team: Team, db_url: str, tab: Any
) -> None:
    study_id, numbers = single_objective(server, team, db_url)
    t: Tab = tab()
    page = t.open(f"/ui/studies/{study_id}/trials/{numbers[1]}")
    t.wait_charts("metric-val_accuracy", "metric-val_loss", "metric-lr")
    criteria = page.locator("#verdict-criteria tbody tr").all_inner_texts()
    assert len(criteria) == 2
    assert "val_accuracy" in criteria[0] and ">= 0.97" in criteria[0] and "pass" in criteria[0]
    assert "generalization_gap" in criteria[1] and "0.01" in criteria[1]
    assert "accepted" in page.locator(".verdict-head").inner_text()
    assert page.locator("#trial-params tbody tr").count() == 3
    assert page.locator("#attempts tbody tr").count() == 1
    assert "cpu" in page.locator("#trial-run").inner_text()
    t.screenshot("trial")

    page = t.open(f"/ui/studies/{study_id}/trials/{numbers[4]}")
    page.wait_for_selector("#error-section:not([hidden])")
    assert "RuntimeError: boom" in page.locator("#trial-error").inner_text()
    assert "only complete trials qualify" in page.locator("#verdict").inner_text()
    assert t.errors == []


def test_compare_page_overlays_studies(
    server: str, team: Team, db_url: str, tab: Any
) -> None:
    first, _ = single_objective(server, team, db_url)
    body = spec(name="digits-mlp-2", standard=NAME, budget={"n_trials": 3, "max_parallel": 3})
    second = post(server, team, "/studies", body)["id"]
    run_study(db_url, second, [0.5, 0.7, 0.6])
    t: Tab = tab()
    page = t.open(f"/ui/compare?studies={first},{second}")
    t.wait_charts("compare")
    lines = page.evaluate(
        "() => document.querySelector('[data-chart=\"compare\"]').data.map(d => d.y.at(-1))")
    assert lines == [pytest.approx(0.99), pytest.approx(0.7)]
    assert page.locator("#compare-best tbody tr").count() == 2
    assert page.locator("#study-choices input").count() == 2
    assert t.errors == []


def test_dark_theme_follows_the_system(
    server: str, team: Team, db_url: str, tab: Any
) -> None:
    study_id, _ = single_objective(server, team, db_url, n=3)
    colours = {}
    for scheme in ("light", "dark"):
        t: Tab = tab(color_scheme=scheme)
        page = t.open(f"/ui/studies/{study_id}")
        t.wait_charts("history")
        colours[scheme] = page.evaluate("""() => [
            getComputedStyle(document.body).backgroundColor,
            document.querySelector('[data-chart="history"]')._fullLayout.paper_bgcolor]""")
        if scheme == "dark":
            t.screenshot("study-dark")
        assert t.errors == []
    assert colours["light"] != colours["dark"]
    assert colours["dark"][1] in ("#181b22", "rgb(24, 27, 34)")


def test_running_study_updates_live(
    server: str, team: Team, db_url: str, tab: Any
) -> None:
    body = spec(budget={"n_trials": 3, "max_parallel": 3})
    study_id = post(server, team, "/studies", body)["id"]
    ostudy = optuna_study(db_url, study_id)
    first = ostudy.ask(SPACE)
    report_epochs(db_url, study_id, first.number, 0.9, 3)
    finish(db_url, ostudy, first, 0.9)
    running = [ostudy.ask(SPACE), ostudy.ask(SPACE)]
    for trial in running:
        report_epochs(db_url, study_id, trial.number, 0.5, 2)

    t: Tab = tab()
    page = t.open(f"/ui/studies/{study_id}")
    t.wait_charts("history", "curves")
    page.wait_for_selector("#live:not([hidden])")
    cell = f'#trials tbody tr[data-number="{running[0].number}"] .trial-state'
    assert page.locator(cell).inner_text() == "running"
    page.locator("#chart-importance").scroll_into_view_if_needed()
    page.wait_for_function("document.querySelector('#chart-importance').textContent"
                           ".includes('at least 2 complete')")

    # A worker finishes both trials while the page stays open: no reload.
    page.evaluate("window.__sameDocument = true")
    for trial, value in ((running[0], 0.95), (running[1], 0.97)):
        finish(db_url, ostudy, trial, value)
    page.wait_for_function(
        f"document.querySelector('{cell}').textContent === 'complete'", timeout=15_000)
    page.wait_for_selector("#live", state="hidden", timeout=15_000)
    assert page.evaluate("window.__sameDocument") is True
    assert get(server, team, f"/studies/{study_id}")["state"] == "completed"
    # The end state is right: every trial's curve, importance over the 3 complete trials.
    page.wait_for_function(
        "document.querySelector('#importance-note').textContent.includes('3 complete')",
        timeout=15_000)
    t.wait_charts("importance")
    # A chart redrawn while out of view is drawn with the newest data once scrolled back to.
    t.wait_charts("curves")
    deadline = time.monotonic() + 10
    while t.chart_points("curves") < 3 + 2 + 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert t.chart_points("curves") == 3 + 2 + 2
    assert page.locator("#trials .trial-state", has_text="running").count() == 0
    t.screenshot("study-live-finished")
    assert t.errors == []


def test_notes_on_the_study_and_trial_pages(
    server: str, team: Team, db_url: str, tab: Any
) -> None:
    study_id, numbers = single_objective(server, team, db_url, n=3)
    post(server, team, f"/studies/{study_id}/notes", {"body": "lr above 0.01 diverges"})
    post(server, team, f"/studies/{study_id}/trials/{numbers[1]}/notes", {"body": "the best"})

    viewer: Tab = tab()
    page = viewer.open(f"/ui/studies/{study_id}")
    page.wait_for_selector("#notes .note")
    listed = page.locator("#notes .note").all_inner_texts()
    assert len(listed) == 2 and "the best" in listed[0] and f"trial #{numbers[1]}" in listed[0]
    assert "lr above 0.01 diverges" in listed[1]
    assert page.locator("#notes .note-form").is_hidden()  # viewers read, members write

    member: Tab = tab(role="member")
    page = member.open(f"/ui/studies/{study_id}")
    page.wait_for_selector("#notes .note-form:not([hidden])")
    page.fill("#notes textarea", "try a wider hidden layer")
    page.click("#notes .note-form button")
    page.wait_for_function("document.querySelectorAll('#notes .note').length === 3")
    assert "try a wider hidden layer" in page.locator("#notes .note").first.inner_text()
    stored = get(server, team, f"/studies/{study_id}/notes")["items"]
    assert stored[0]["body"] == "try a wider hidden layer" and stored[0]["trial_number"] is None

    page = member.open(f"/ui/studies/{study_id}/trials/{numbers[1]}")
    page.wait_for_selector("#notes .note")
    assert page.locator("#notes .note").all_inner_texts()[0].endswith("the best")
    page.fill("#notes textarea", "rerun with seed 2")
    page.click("#notes .note-form button")
    page.wait_for_function("document.querySelectorAll('#notes .note').length === 2")
    trial_notes = get(server, team, f"/studies/{study_id}/trials/{numbers[1]}/notes")["items"]
    assert [n["body"] for n in trial_notes] == ["rerun with seed 2", "the best"]
    member.screenshot("trial-notes")
    assert viewer.errors == [] and member.errors == []


def test_export_link_downloads_the_trials(
    server: str, team: Team, db_url: str, tab: Any, tmp_path: Path
) -> None:
    study_id, numbers = single_objective(server, team, db_url)
    t: Tab = tab()
    page = t.open(f"/ui/studies/{study_id}")
    page.wait_for_selector("body[data-ready]")
    with page.expect_download() as info:
        page.click("#export-csv")
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.suffix == ".csv"
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["number"]) for r in rows] == numbers
    assert {"val_accuracy", "param_lr", "param_optimizer", "state"} <= set(rows[0])
    assert [r["state"] for r in rows] == ["complete", "complete", "pruned", "complete", "fail",
                                          "complete"]
    assert float(rows[3]["val_accuracy"]) == pytest.approx(0.99)
    with page.expect_download() as info:
        page.click("#export-parquet")
    assert info.value.suggested_filename.endswith(".parquet")
    assert t.errors == []


def test_importance_selector_switches_the_evaluator(
    server: str, team: Team, db_url: str, tab: Any
) -> None:
    study_id, _ = single_objective(server, team, db_url)
    t: Tab = tab()
    page = t.open(f"/ui/studies/{study_id}")
    t.wait_charts("importance")
    chart = page.locator("#chart-importance")
    assert chart.get_attribute("data-evaluator") == "ped_anova"  # the fast default
    assert "ped_anova over 4 complete trials" in page.locator("#importance-note").inner_text()
    for evaluator in ("fanova", "mean_decrease_impurity"):
        page.select_option("#evaluator", evaluator)
        page.wait_for_function(
            f"document.querySelector('#chart-importance').dataset.evaluator === '{evaluator}'",
            timeout=30_000)
        assert page.locator("#importance-note").inner_text().startswith(evaluator)
    assert t.errors == []


def test_standard_page_shows_its_usage(
    server: str, team: Team, db_url: str, tab: Any
) -> None:
    study_id, _ = single_objective(server, team, db_url)
    usage = get(server, team, f"/standards/{NAME}/usage")
    t: Tab = tab()
    page = t.open(f"/ui/standards/{NAME}")
    page.wait_for_selector("#usage tbody tr[data-version]")
    rows = page.locator("#usage tbody tr[data-version]")
    assert rows.count() == len(usage["versions"])
    first = usage["versions"][0]
    cells = rows.first.locator("td").all_inner_texts()
    assert cells[0] == f"v{first['version']}"
    assert cells[2:7] == [str(first["studies_total"]), str(first["overrides"]),
                          str(first["trials"]["accepted"]), str(first["trials"]["rejected"]),
                          str(first["trials"]["pending"])]
    assert first["trials"]["accepted"] > 0 and f"#{first['best_accepted'][0]['trial_number']}" in (
        cells[7])
    criteria = page.locator("#usage-criteria tbody tr[data-version]").all_inner_texts()
    assert len(criteria) == len(first["criteria"]) == 2
    assert "val_accuracy" in criteria[0] and "generalization_gap" in criteria[1]
    assert page.locator(f'#usage a[href="/ui/studies/{study_id}/trials/'
                        f'{first["best_accepted"][0]["trial_number"]}"]').count() == 1
    t.screenshot("standard-usage")
    assert t.errors == []


def test_trial_table_from_number_and_importance_evaluator_parameters(
    server: str, team: Team, db_url: str
) -> None:
    study_id, numbers = single_objective(server, team, db_url)
    whole = get(server, team, f"/studies/{study_id}/trial-table")
    assert whole["from_number"] == 0 and [r[0] for r in whole["rows"]] == numbers
    tail = get(server, team, f"/studies/{study_id}/trial-table", from_number=numbers[3])
    assert tail["from_number"] == numbers[3] and tail["rows"] == whole["rows"][3:]
    # Read as plain rows for speed, the answer is still what the trials themselves say.
    with session_scope(db_url) as session:
        study = session.get(Study, study_id)
        assert study is not None
        expected = TrialTable.of(study, studies.trial_table(session, study))
    assert whole == expected.model_dump(mode="json")
    assert any(row[3] for row in whole["rows"]) and whole["param_names"]
    for bad in ("-1", "x"):
        response = httpx.get(f"{server}{API}/studies/{study_id}/trial-table",
                             params={"from_number": bad}, headers=team.headers())
        assert response.status_code == 422 and "from_number" in response.text

    url = f"{server}{API}/studies/{study_id}/importance"
    assert get(server, team, f"/studies/{study_id}/importance")["evaluator"] == "ped_anova"
    for evaluator in ("ped_anova", "fanova", "mean_decrease_impurity"):
        assert get(server, team, f"/studies/{study_id}/importance",
                   evaluator=evaluator)["evaluator"] == evaluator
    unknown = httpx.get(url, params={"evaluator": "mdi"}, headers=team.headers())
    assert unknown.status_code == 422 and "evaluator" in unknown.text
