"""How long the study page of a 10,000-trial study takes to draw, in headless Chromium.

Seeds a fresh PostgreSQL database with one finished study of 10,000 trials (four in five
complete, four parameters, 3 per-epoch metrics x 10 epochs each: 300,000 metric rows, trial
times spread over a day), serves the API with uvicorn in its own process, and opens
``/ui/studies/{id}`` in Debian's chromium through playwright, each load in a fresh browser
context (nothing cached). It reports, from the start of navigation, the median of ``--loads``
loads of:

- first screen: the trials table has its rows and every chart in the first 1400x1000 viewport
  holds its plot (or says why not); at 10,000 trials the first chart begins just below it;
- ready: the page says it is ready (``data-ready``: its first data shown, the charts near the
  viewport drawn, plotly.js run so that a chart scrolled to does not wait for it);
- first chart: the first chart (wherever it is) holds its plot or says why not;
- every chart: every chart on the page does, the load scrolling to each in turn from ready.

The page draws a chart only once it comes near the viewport, so each load, once ready, scrolls
each chart in the page's order to the top of the viewport and waits until it is drawn before
the next: per chart, the seconds from its scroll until it was drawn (0 where an earlier scroll
had brought it near and it was drawn already), and "scrolled through", from the first scroll
to the last chart drawn.

The timings come from the page itself (``performance.now()`` checked on every animation frame),
so they include fetching the data, plotly.js, and drawing.

Where the time goes, as medians over the loads: when the trial-table and leaderboard reads and
the fetch of plotly.js ended and when plotly.js had run, and per chart when its drawing began
and how long it took, from the call of its drawing function to the first frame after its plot
was drawn (charts.js's ``chart <name>`` performance measures).
Chromium runs with ``--disable-gpu``, so WebGL traces (scattergl, parallel coordinates) are
drawn in software (SwiftShader), as on a machine without a GPU.

The peer, on the same data and in the same run: once the Tuneboard loads are done and its API
stopped, ``tuneboard dashboard`` (optuna-dashboard over the same database through
ReadOnlyStorage, in its own process) serves the study, and its page
``/dashboard/studies/{id}`` (the storage's study id is ours) is loaded the same way, a warm-up
load then ``--loads`` fresh contexts. By default that page shows three plotly.js charts: the
optimization history (``#plot-history``), the hyperparameter importances
(``#graph-hyperparameter-importances``, computed by its server) and the timeline
(``#graph-timeline``), all in the first 1400x1000 viewport (its intermediate-values chart
shows only for trials with intermediate values, which these, with per-epoch metrics of ours,
lack); slice, contour, parallel coordinates and the rest are on its "analytics" page, so it
draws fewer charts than ours. A chart counts as drawn once plotly has laid it out
(``_fullLayout``) with a trace holding points. Its "first chart" and "every chart" (its three)
are printed beside ours with the ratios ours / optuna-dashboard (under 1: ours is faster), then
when its study read (every trial, in one response), its importances read and its bundle.js
ended and when each chart was drawn. A peer load waits at most 120 s; one that has not drawn
by then is printed as not finished (and counts as slower than every finished one in the
median). The database (tb_bench_*) is dropped at the end.

    python bench/study_page.py [--trials 10000] [--loads 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import optuna
import sqlalchemy as sa
from _common import ROOT, free_port, serve_api
from storage_cold_start import create_database, drop_database, seed_finished_study

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"]
VIEWPORT = {"width": 1400, "height": 1000}
PEER_WAIT_S = 120

# Checked on every frame from the start of the page: when the first chart, the charts in the
# first viewport, and then all of them, first hold a plot or an "empty" message.
PROBE = """
(() => {
  const drawn = (gd) => gd.querySelector('.empty') ||
    (Array.isArray(gd.data) && gd.data.length > 0 && gd._fullLayout);
  const visible = (gd) => !gd.closest('[hidden]');
  window.__bench = {};
  function check() {
    const charts = [...document.querySelectorAll('[data-chart]')].filter(visible);
    if (!window.__bench.firstChart && charts.some(drawn)) {
      window.__bench.firstChart = performance.now();
    }
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


# Once the first screen is drawn and the page is ready (its first data shown, the charts near
# the viewport drawn, plotly.js run): each chart in the page's order scrolled to the top of the
# viewport, the next once it is drawn; per chart the seconds from its scroll until it was drawn
# (its first ``chart <name>`` measure ended), 0 for one drawn before (near an earlier one).
SCROLL_THROUGH = """
async () => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r)));
  const ended = (name) => {
    const e = performance.getEntriesByName(`chart ${name}`)[0];
    return e && e.startTime + e.duration;
  };
  const charts = [...document.querySelectorAll('[data-chart]')]
    .filter((gd) => !gd.closest('[hidden]'));
  const out = { ready: performance.now(), charts: {} };
  const deadline = performance.now() + 60000;
  for (const gd of charts) {
    const name = gd.dataset.chart, start = performance.now();
    gd.closest('section').scrollIntoView({ block: 'start' });
    while (ended(name) === undefined) {
      if (performance.now() > deadline) throw new Error(`chart ${name} not drawn once scrolled to`);
      await frame();
    }
    out.charts[name] = Math.max(0, ended(name) - start);
  }
  out.end = performance.now();
  return out;
}
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
    'trial-table read': ended('/trial-table'), 'leaderboard read': ended('/leaderboard'),
    'plotly.js fetched': ended('/ui/vendor/plotly-'),
    'plotly.js ran': performance.getEntriesByName('plotly.js ran')[0]?.startTime } };
})()
"""

# optuna-dashboard's study page: when each of its charts (by element id) first holds a plot,
# and when the first and the last of them did.
PEER_CHARTS = ("plot-history", "graph-hyperparameter-importances", "graph-timeline")
PEER_PROBE = """
(() => {
  const ids = IDS;
  const drawn = (gd) => gd && gd._fullLayout && Array.isArray(gd.data) &&
    gd.data.some((t) => (t.x && t.x.length) || (t.y && t.y.length));
  window.__bench = { charts: {} };
  function check() {
    const now = performance.now();
    for (const id of ids) {
      if (!(id in window.__bench.charts) && drawn(document.getElementById(id))) {
        window.__bench.charts[id] = now;
        window.__bench.firstChart ??= now;
      }
    }
    if (ids.every((id) => id in window.__bench.charts)) { window.__bench.all = now; return; }
    requestAnimationFrame(check);
  }
  requestAnimationFrame(check);
})();
""".replace("IDS", json.dumps(PEER_CHARTS))
PEER_BREAKDOWN = """
(() => {
  const ended = (part) => performance.getEntriesByType('resource')
    .find((e) => e.name.includes(part))?.responseEnd;
  return { ...window.__bench, reads: {
    'study read': ended('?after=0'), 'importances read': ended('/param_importances'),
    'bundle.js fetched': ended('/static/bundle.js') } };
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


def fresh_loads(
    url: str, loads: int, init_scripts: list[str], waits: list[tuple[str, float]], read: str,
    then: str | None = None, then_waits: Sequence[tuple[str, float]] = (),
) -> list[tuple[dict[str, Any], list[str]]]:
    """``loads`` loads of ``url``, each in a fresh browser context with ``init_scripts``, after
    one that warms the server's caches (not returned): per load, what ``read`` returns once
    every ``waits`` expression holds (each waited for at most its seconds; on a timeout it is
    read as it stands, with the timeout among the errors) and the page's errors. With
    ``then``, that script is run once the waits hold (its answer is read as ``then``), and
    ``then_waits`` are waited for after it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for _ in range(loads + 1):
                context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
                for script in init_scripts:
                    context.add_init_script(script)
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                page.goto(url)
                after = None
                try:
                    for expression, timeout_s in waits:
                        page.wait_for_function(expression, timeout=timeout_s * 1000)
                    if then:
                        after = page.evaluate(then)
                    for expression, timeout_s in then_waits:
                        page.wait_for_function(expression, timeout=timeout_s * 1000)
                except PlaywrightTimeout:
                    errors.append(f"not drawn within {timeout_s:.0f} s")
                out.append(({**page.evaluate(read), "then": after}, errors))
                context.close()
        finally:
            browser.close()
    return out[1:]


def our_times(base: str, study_id: int, key: str, loads: int) -> list[dict[str, float]]:
    init = [f"localStorage.setItem('tuneboard.apiKey', {key!r})", PROBE]
    waits = [("window.__bench && window.__bench.first", 60), ("document.body.dataset.ready", 60)]
    after = [("window.__bench.all", 60), (MEASURED, 60)]
    out = []
    for seen, errors in fresh_loads(f"{base}/ui/studies/{study_id}", loads, init, waits,
                                    BREAKDOWN, SCROLL_THROUGH, after):
        if errors:
            raise RuntimeError(f"the page failed: {errors}")
        times = {k: seen[k] / 1000 for k in ("firstChart", "first", "all")}
        scrolled = seen["then"]
        times["ready"] = scrolled["ready"] / 1000
        times["scrolled through"] = (scrolled["end"] - scrolled["ready"]) / 1000
        times.update({f"scrolled to {name}": v / 1000 for name, v in scrolled["charts"].items()})
        times.update({k: v / 1000 for k, v in seen["reads"].items() if v is not None})
        for name, (start, took) in seen["charts"].items():
            times[f"chart {name} began"] = start / 1000
            times[f"chart {name}"] = took / 1000
        out.append(times)
    return out


def peer_times(base: str, study_id: int, loads: int) -> list[dict[str, float]]:
    """Like ``our_times`` on optuna-dashboard's page; a figure it did not reach within
    ``PEER_WAIT_S`` is infinite."""
    waits = [("window.__bench && window.__bench.all", PEER_WAIT_S)]
    out = []
    for seen, errors in fresh_loads(f"{base}/dashboard/studies/{study_id}", loads,
                                    [PEER_PROBE], waits, PEER_BREAKDOWN):
        if errors:
            print(f"optuna-dashboard load: {'; '.join(errors)}")
        times = {k: seen[k] / 1000 if seen.get(k) else math.inf for k in ("firstChart", "all")}
        times.update({k: v / 1000 for k, v in seen["reads"].items() if v is not None})
        drawn = seen["charts"]
        times.update({f"chart {name} drawn": drawn[name] / 1000 if name in drawn else math.inf
                      for name in PEER_CHARTS})
        out.append(times)
    return out


@contextmanager
def serve_dashboard(database_url: str) -> Iterator[str]:
    """``tuneboard dashboard`` (optuna-dashboard, read-only) over ``database_url`` in its own
    process on a free port; yields its address once it answers."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tuneboard.cli", "dashboard", "--port", str(port)],
            cwd=ROOT, env={**os.environ, "TUNEBOARD_DATABASE_URL": database_url},
            stdout=log, stderr=log,  # it logs every request
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/api/meta", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"optuna-dashboard did not start:\n{log.read().decode()}")
                time.sleep(0.1)
            yield base
        finally:
            proc.terminate()
            proc.wait()


def median(times: list[dict[str, float]], k: str) -> float:
    return statistics.median(t[k] for t in times)


def seconds(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else f">{PEER_WAIT_S}"


def report(ours: list[dict[str, float]], peer: list[dict[str, float]], n_trials: int,
           loads: int) -> None:
    print(f"\n/ui/studies/{{id}} at {n_trials} trials, headless chromium, "
          f"{loads} loads (fresh context each)")
    for label, k in (("first screen drawn", "first"), ("ready", "ready"),
                     ("first chart drawn", "firstChart"), ("every chart drawn", "all")):
        samples = ", ".join(f"{t[k]:.2f}" for t in ours)
        print(f"{label:<22} median {median(ours, k):.2f} s  ({samples})")
    print("scrolled to, one chart after another from the ready page: seconds from the scroll "
          "until drawn (0: drawn before)")
    scrolls = [k for k in ours[0] if k.startswith("scrolled to ")]
    for k in [*scrolls, "scrolled through"]:
        samples = ", ".join(f"{t[k]:.2f}" for t in ours if k in t)
        print(f"  {k.removeprefix('scrolled to '):<20} median {median(ours, k):.2f} s  ({samples})")

    print(f"\nbeside optuna-dashboard's /dashboard/studies/{{id}} ({len(PEER_CHARTS)} charts), "
          f"medians (s)")
    print(f"  {'':<20} {'Tuneboard':>10} {'optuna-dashboard':>17} {'ours/theirs':>12}")
    for label, k in (("first chart drawn", "firstChart"), ("every chart drawn", "all")):
        mine, theirs = median(ours, k), median(peer, k)
        ratio = f"{mine / theirs:.2f}" if math.isfinite(theirs) else f"<{mine / PEER_WAIT_S:.2f}"
        samples = ", ".join(seconds(t[k]) for t in peer)
        print(f"  {label:<20} {mine:>10.2f} {seconds(theirs):>17} {ratio:>12}  "
              f"(optuna-dashboard: {samples})")
    unfinished = sum(not math.isfinite(t["all"]) for t in peer)
    if unfinished:
        print(f"  optuna-dashboard did not finish drawing in {PEER_WAIT_S} s "
              f"in {unfinished} of {loads} loads")

    print("\nwhere the time goes (medians, s)")
    for k in ("trial-table read", "leaderboard read", "plotly.js fetched", "plotly.js ran"):
        if all(k in t for t in ours):
            print(f"  {k:<22}       at {median(ours, k):6.2f}")
    charts = [k for k in ours[0] if all(k in t and f"{k} began" in t for t in ours)]
    for k in sorted(charts, key=lambda k: median(ours, f"{k} began")):
        print(f"  {k:<22} began at {median(ours, f'{k} began'):6.2f}, took {median(ours, k):5.2f}")
    print("optuna-dashboard")
    for k in ("bundle.js fetched", "study read", "importances read"):
        if all(k in t for t in peer):
            print(f"  {k:<22}       at {median(peer, k):6.2f}")
    for name in PEER_CHARTS:
        drawn = seconds(median(peer, f"chart {name} drawn"))
        print(f"  {'#' + name:<33} drawn at {drawn:>6}")


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
            ours = our_times(f"http://127.0.0.1:{args.port}", study_id, key, args.loads)
        finally:
            proc.terminate()
            proc.wait()
        with serve_dashboard(url) as base:
            peer = peer_times(base, study_id, args.loads)
        report(ours, peer, args.trials, args.loads)
    finally:
        drop_database(name)


if __name__ == "__main__":
    main()
