"""Browser tests of the web pages: a real uvicorn server (a process of its own, as deployed)
over the test database, driven by Debian's chromium through playwright.

Studies are made with the real API (standards, studies) and finished through the real store
(Optuna on ``SqlStorage``, ``verdicts.judge``, ``dispatch``), as a worker would; no worker runs.
Screenshots land in ``test-artifacts/ui/`` (or ``$TUNEBOARD_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import optuna
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.api.conftest import API, BROKER_URL, Team
from tests.live_server import serve_process
from tuneboard.db import session_scope
from tuneboard.db.base import utcnow
from tuneboard.optimization.storage import SqlStorage
from tuneboard.studies import dispatch
from tuneboard.studies import repository as repo
from tuneboard.studies.verdicts import judge

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("TUNEBOARD_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "ui"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SPACE = {
    "lr": optuna.distributions.FloatDistribution(1e-5, 1e-1, log=True),
    "optimizer": optuna.distributions.CategoricalDistribution(["sgd", "adam", "adamw"]),
    "hidden": optuna.distributions.IntDistribution(32, 256, step=32),
}


@pytest.fixture(scope="module")
def server(migrated_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``uvicorn api.main:app`` in its own process on the backend's database."""
    with serve_process(migrated_db, BROKER_URL, tmp_path_factory.mktemp("ui-server")) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Tab:
    """A page logged in with a key, recording every console error and uncaught exception."""

    page: Page
    base: str
    errors: list[str] = field(default_factory=list)

    def open(self, path: str) -> Page:
        self.page.goto(self.base + path)
        return self.page

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def wait_charts(self, *names: str, timeout: float = 20_000) -> None:
        """Scroll to each named chart (``data-chart``) in turn, as a reader would (a chart is
        drawn once it comes near the viewport), and wait until it holds plotly data, drawn
        full size."""
        for name in names:
            self.page.locator(f'[data-chart="{name}"]').scroll_into_view_if_needed(
                timeout=timeout)
            self.page.wait_for_function(
                """n => {
                    const gd = document.querySelector(`[data-chart="${n}"]`);
                    return gd && Array.isArray(gd.data) && gd.data.length > 0
                        && gd.getBoundingClientRect().height >= 200;
                }""",
                arg=name,
                timeout=timeout,
            )

    def chart_trials(self, name: str) -> set[int]:
        """The trial numbers a chart's points carry (as ``customdata``)."""
        numbers = self.page.evaluate(
            """n => document.querySelector(`[data-chart="${n}"]`).data.flatMap(t =>
                (t.customdata || []).filter(c => c !== null))""",
            name,
        )
        return {int(n) for n in numbers}

    def chart_points(self, name: str) -> int:
        """How many points a chart's traces carry (x, or a parcoords' first dimension)."""
        return int(self.page.evaluate(
            """n => document.querySelector(`[data-chart="${n}"]`).data.reduce((sum, t) =>
                sum + (t.x ? t.x.length : t.dimensions ? t.dimensions[0].values.length : 0), 0)""",
            name,
        ))


@pytest.fixture
def tab(
    browser: Browser, server: str, team: Team, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Tab]]:
    contexts = []

    def make(color_scheme: Any = "light", role: str = "viewer") -> Tab:
        context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                      color_scheme=color_scheme, accept_downloads=True)
        context.add_init_script(
            f"localStorage.setItem('tuneboard.apiKey', {team.keys[role]!r})"
        )
        contexts.append(context)
        tab = Tab(page=context.new_page(), base=server)

        def console(msg: ConsoleMessage) -> None:
            if msg.type == "error":
                tab.errors.append(f"console: {msg.text}")

        tab.page.on("console", console)
        tab.page.on("pageerror", lambda exc: tab.errors.append(f"page error: {exc}"))
        tab.page.on("response", lambda r: r.status >= 400
                    and tab.errors.append(f"HTTP {r.status}: {r.url}"))
        return tab

    yield make
    for context in contexts:
        context.close()


# --- studies made as a worker would make them ----------------------------------------------


def optuna_study(db_url: str, study_id: int) -> optuna.Study:
    with session_scope(db_url) as session:
        study = repo.get_study(session, None, study_id)
        assert study is not None
        name = study.optuna_name
    return optuna.load_study(study_name=name, storage=SqlStorage(db_url))


def report_epochs(db_url: str, study_id: int, number: int, final: float, epochs: int) -> None:
    """Per-epoch metrics of a running trial (epochs 1..``epochs``) rising to ``final``, as the
    worker records them; ``lr`` sorts before the study's metric."""
    steps = {
        step: {"val_accuracy": final * step / epochs, "val_loss": 1.0 / step, "lr": 1e-3}
        for step in range(1, epochs + 1)
    }
    with session_scope(db_url) as session:
        row = repo.get_trial(session, study_id, number)
        assert row is not None
        repo.record_reports(
            session, row.id, steps, utcnow(),
            intermediate_values={step: m["val_accuracy"] for step, m in steps.items()},
        )


def finish(
    db_url: str,
    ostudy: optuna.Study,
    trial: optuna.Trial,
    outcome: float | tuple[float, ...] | str | None,
    *,
    gap: float = 0.01,
) -> None:
    """Tell the trial's outcome (values, None for pruned, an error text for failed), then
    judge it and dispatch the study, as the runner does."""
    if outcome is None:
        ostudy.tell(trial, state=optuna.trial.TrialState.PRUNED)
    elif isinstance(outcome, str):
        ostudy.tell(trial, state=optuna.trial.TrialState.FAIL)
    else:
        ostudy.tell(trial, list(outcome) if isinstance(outcome, tuple) else outcome)
    first = outcome[0] if isinstance(outcome, tuple) else outcome
    with session_scope(db_url) as session:
        row = repo.get_trial(session, ostudy._study_id, trial.number)
        assert row is not None
        row.device, row.worker = "cpu", "celery@ui-test"
        if isinstance(outcome, str):
            row.error = outcome
        final = {"val_accuracy": first, "generalization_gap": gap} if isinstance(
            first, float) else {}
        judge(session, row, final)
    with session_scope(db_url) as session:
        dispatch.dispatch(session, ostudy._study_id)


def run_study(
    db_url: str, study_id: int, outcomes: list[Any], *, epochs: int = 4
) -> list[int]:
    ostudy = optuna_study(db_url, study_id)
    numbers = []
    for outcome in outcomes:
        trial = ostudy.ask(SPACE)
        first = outcome[0] if isinstance(outcome, tuple) else outcome
        if isinstance(first, float):
            report_epochs(db_url, study_id, trial.number, first, epochs)
        finish(db_url, ostudy, trial, outcome)
        numbers.append(trial.number)
    return numbers


def post(server: str, team: Team, path: str, body: dict[str, Any], role: str = "member") -> Any:
    response = httpx.post(f"{server}{API}{path}", json=body, headers=team.headers(role),
                          timeout=30)
    assert response.status_code in (200, 201), response.text
    return response.json()


def get(server: str, team: Team, path: str, **params: Any) -> Any:
    response = httpx.get(f"{server}{API}{path}", params=params, headers=team.headers(),
                         timeout=30)
    assert response.status_code == 200, response.text
    return response.json()
