"""How long the study page of a 10,000-trial study takes to draw, in headless Chromium.

Seeds a fresh PostgreSQL database with one finished study of 10,000 trials (four in five
complete, four parameters, 3 per-epoch metrics x 10 epochs each: 300,000 metric rows, trial
times spread over a day), serves the API with uvicorn in its own process, and opens
``/ui/studies/{id}`` in Debian's chromium through playwright, each load in a fresh browser
context (nothing cached). It reports, from the start of navigation, the median of ``--loads``
loads of:

- first screen: the trials table has its rows and every chart in the first 1400x1000 viewport
  holds its plot (or says why not); at 10,000 trials the first chart begins just below it;
- every chart: the same for every chart on the page (those below the fold included).

The timings come from the page itself (``performance.now()`` checked on every animation frame),
so they include fetching the data, plotly.js, and drawing. No load scrolls: the page draws the
charts near the viewport first and then the others, one at a time, when the browser is idle,
so "every chart" is the time until the whole page is drawn while the reader does nothing.

Where the time goes, as medians over the loads: when the trial-table read and the fetch of
plotly.js ended and when plotly.js had run (the page runs it to draw its first chart), and per
chart when its drawing began and how long it took, from the call of its drawing function to the
first frame after its plot was drawn (charts.js's ``chart <name>`` performance measures).
Chromium runs with ``--disable-gpu``, so WebGL traces (scattergl, parallel coordinates) are
drawn in software (SwiftShader), as on a machine without a GPU. The database (tb_bench_*) is
dropped at the end.

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


# Every chart drawn on the page has its measure (each is taken a frame after its plot).
MEASURED = """
() => [...document.querySelectorAll('[data-chart]')].filter((gd) => !gd.closest('[hidden]'))
  .every((gd) => performance.getEntriesByName(`chart ${gd.dataset.chart}`).length)
"""
# The probe's times; when the trial-table read and the fetch of plotly.js ended and when
# plotly.js had run; per chart when its first drawing began and how long it took.
BREAKDOWN = """
(() => {
  const ended = (part) => performance.getEntriesByType('resource')
    .find((e) => e.name.includes(part))?.responseEnd;
  const charts = {};
  for (const e of performance.getEntriesByType('measure')) {
    const name = e.name.replace(/^chart /, '');
    if (e.name.startsWith('chart ') && !(name in charts)) charts[name] = [e.startTime, e.duration];
  }
  return { ...window.__bench, charts, reads: {
    'trial-table read': ended('/trial-table'), 'plotly.js fetched': ended('/ui/vendor/plotly-'),
    'plotly.js ran': performance.getEntriesByName('plotly.js ran')[0]?.startTime } };
})()
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
                page.wait_for_function(MEASURED, timeout=60_000)
                seen: dict[str, Any] = page.evaluate(BREAKDOWN)
                context.close()
                if errors:
                    raise RuntimeError(f"the page failed: {errors}")
                times = {"first": seen["first"] / 1000, "all": seen["all"] / 1000}
                times.update({k: v / 1000 for k, v in seen["reads"].items() if v is not None})
                for name, (start, took) in seen["charts"].items():
                    times[f"chart {name} began"] = start / 1000
                    times[f"chart {name}"] = took / 1000
                out.append(times)
        finally:
            browser.close()
    return out[1:]


def report(times: list[dict[str, float]], n_trials: int, loads: int) -> None:
    def median(k: str) -> float:
        return statistics.median(t[k] for t in times)

    print(f"\n/ui/studies/{{id}} at {n_trials} trials, headless chromium, "
          f"{loads} loads (fresh context each)")
    for label, k in (("first screen drawn", "first"), ("every chart drawn", "all")):
        samples = ", ".join(f"{t[k]:.2f}" for t in times)
        print(f"{label:<22} median {median(k):.2f} s  ({samples})")
    print("\nwhere the time goes (medians, s)")
    for k in ("trial-table read", "plotly.js fetched", "plotly.js ran"):
        if all(k in t for t in times):
            print(f"  {k:<22}       at {median(k):6.2f}")
    charts = [k for k in times[0] if all(k in t and f"{k} began" in t for t in times)]
    for k in sorted(charts, key=lambda k: median(f"{k} began")):
        print(f"  {k:<22} began at {median(f'{k} began'):6.2f}, took {median(k):5.2f}")


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
        report(times, args.trials, args.loads)
    finally:
        drop_database(name)


if __name__ == "__main__":
    main()
