"""How long the study page of a 10,000-trial study takes to draw, in headless Chromium.

Seeds a fresh PostgreSQL database with one finished study of 10,000 trials (four in five
complete, four parameters, 3 per-epoch metrics x 10 epochs each: 300,000 metric rows, trial
times spread over a day), serves the API with uvicorn in its own process, and opens
``/ui/studies/{id}`` in Debian's chromium through playwright, each load in a fresh browser
context (nothing cached). It reports, from the start of navigation, the median of ``--loads``
loads of:

- first screen: every chart in the first 1400x1000 viewport holds its plot (or says why not);
- every chart: the same for every chart on the page (those below the fold included) and the
  trials table has its rows.

The timings come from the page itself (``performance.now()`` checked on every animation frame),
so they include fetching the data, plotly.js, and drawing. The database (tb_bench_*) is dropped
at the end.

    python bench/study_page.py [--trials 10000] [--loads 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
import uuid
from typing import Any

import optuna
import sqlalchemy as sa
from _common import serve_api
from storage_cold_start import create_database, drop_database, seed_finished_study

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"]
VIEWPORT = {"width": 1400, "height": 1000}

# Checked on every frame from the start of the page: when the charts in the first viewport, and
# then all of them, first hold a plot or an "empty" message.
PROBE = """
(() => {
  const drawn = (gd) => gd.querySelector('.empty') ||
    (Array.isArray(gd.data) && gd.data.length > 0 && gd._fullLayout);
  const visible = (gd) => !gd.closest('[hidden]');
  window.__bench = {};
  function check() {
    const charts = [...document.querySelectorAll('[data-chart]')].filter(visible);
    const rows = document.querySelectorAll('#trials tbody tr[data-number]').length;
    if (charts.length && rows) {
      const first = charts.filter((gd) => gd.getBoundingClientRect().top < innerHeight);
      if (!window.__bench.first && first.every(drawn)) window.__bench.first = performance.now();
      if (charts.every(drawn)) { window.__bench.all = performance.now(); return; }
    }
    requestAnimationFrame(check);
  }
  requestAnimationFrame(check);
})();
"""


def seed(url: str, n_trials: int) -> tuple[int, str]:
    study_id, key = seed_finished_study(url, "study-page", n_trials, 0)
    with sa.create_engine(url).begin() as conn:
        # A trial every ~8 s over the day, each running 5-35 s, 10 epochs of 3 metrics.
        conn.exec_driver_sql(
            "UPDATE trials SET epochs_run = 10, device = 'cpu', worker = 'celery@bench', "
            "datetime_start = timestamp '2026-01-01' + number * interval '8 seconds', "
            "datetime_complete = timestamp '2026-01-01' + number * interval '8 seconds' "
            "+ (5 + mod(number, 31)) * interval '1 second'"
        )
        conn.exec_driver_sql(
            "INSERT INTO trial_metrics (trial_id, step, name, value) "
            "SELECT t.id, s, m, random() FROM trials t, generate_series(1, 10) s, "
            "unnest(array['loss', 'val_loss', 'lr']) m"
        )
        conn.exec_driver_sql("ANALYZE")
    return study_id, key


def load_times(base: str, path: str, key: str, loads: int) -> list[dict[str, float]]:
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for _ in range(loads + 1):  # the first load warms the server's caches, not counted
                context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
                context.add_init_script(f"localStorage.setItem('tuneboard.apiKey', {key!r})")
                context.add_init_script(PROBE)
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                page.goto(base + path)
                page.wait_for_function("window.__bench && window.__bench.all", timeout=120_000)
                times: dict[str, Any] = page.evaluate("window.__bench")
                context.close()
                if errors:
                    raise RuntimeError(f"the page failed: {errors}")
                out.append({k: float(v) / 1000 for k, v in times.items()})
        finally:
            browser.close()
    return out[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--loads", type=int, default=3)
    parser.add_argument("--port", type=int, default=8798)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    name = f"tb_bench_{uuid.uuid4().hex[:8]}"
    url = create_database(name)
    try:
        start = time.perf_counter()
        study_id, key = seed(url, args.trials)
        print(f"seeded {args.trials} trials + {args.trials * 30} metric rows "
              f"in {time.perf_counter() - start:.0f} s")
        proc = serve_api(url, args.port)
        try:
            base = f"http://127.0.0.1:{args.port}"
            times = load_times(base, f"/ui/studies/{study_id}", key, args.loads)
        finally:
            proc.terminate()
            proc.wait()
        print(f"\n/ui/studies/{{id}} at {args.trials} trials, headless chromium, "
              f"{args.loads} loads (fresh context each)")
        for label, k in (("first screen drawn", "first"), ("every chart drawn", "all")):
            samples = ", ".join(f"{t[k]:.2f}" for t in times)
            print(f"{label:<22} median {statistics.median(t[k] for t in times):.2f} s"
                  f"  ({samples})")
    finally:
        drop_database(name)


if __name__ == "__main__":
    main()
