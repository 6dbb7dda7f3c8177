"use strict";
// Study charts drawn with plotly.js (served by Tuneboard from the plotly package). Each
// function takes plain data and a container; layouts take their colours from the page's CSS
// variables, so they follow the light or dark theme and are redrawn when the system setting
// changes.
(function () {
  const drawn = new Map(); // container -> [traces, layout] as last drawn, to redraw on a theme change
  const STATE_COLORS = { complete: "#2563eb", pruned: "#f59e0b", fail: "#dc2626", running: "#16a34a", waiting: "#9ca3af" };

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function themed(layout) {
    const fg = css("--fg"), muted = css("--muted"), line = css("--line"), panel = css("--panel");
    const out = {
      paper_bgcolor: panel, plot_bgcolor: panel,
      font: { color: fg, family: "system-ui, -apple-system, Segoe UI, sans-serif", size: 12 },
      margin: { l: 60, r: 20, t: 16, b: 48 },
      legend: { orientation: "h", y: -0.22, font: { color: muted } },
      colorway: ["#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"],
      hoverlabel: { bgcolor: panel, bordercolor: line, font: { color: fg } },
      ...layout,
    };
    for (const key of Object.keys(out)) {
      if (!/^[xy]axis\d*$/.test(key)) continue;
      out[key] = { gridcolor: line, zerolinecolor: line, linecolor: line, automargin: true, ...out[key] };
    }
    if (!out.xaxis) out.xaxis = { gridcolor: line, zerolinecolor: line, linecolor: line, automargin: true };
    if (!out.yaxis) out.yaxis = { gridcolor: line, zerolinecolor: line, linecolor: line, automargin: true };
    return out;
  }

  // WebGL traces (scattergl, parallel coordinates) are drawn at the screen's pixel ratio, not at
  // plotly's default of 2: on a screen of ratio 1 that is a quarter of the pixels, which is
  // most of what they cost where WebGL is drawn in software.
  const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["sendDataToCloud", "select2d", "lasso2d"],
    plotGlPixelRatio: Math.min(4, Math.max(1, window.devicePixelRatio || 1)) };

  const clickable = new WeakSet(); // containers whose click handler is bound

  // plotly.js is fetched while the page loads (base.html preloads it) but run only when the
  // first chart is drawn: running it holds the main thread for a second or more, which the
  // page's first data and tables should not wait behind. A draw asked for before it has run
  // waits for it, and is dropped if the container was redrawn since.
  let plotlyLoading = null;
  function loadPlotly() {
    if (window.Plotly) return Promise.resolve();
    if (!plotlyLoading) plotlyLoading = new Promise((resolve, reject) => {
      const script = Object.assign(document.createElement("script"), { id: "plotly-js", src: document.body.dataset.plotly });
      script.addEventListener("load", () => { performance.mark("plotly.js ran"); resolve(); });
      script.addEventListener("error", () => reject(new Error("plotly.js did not load")));
      document.head.append(script);
    });
    return plotlyLoading;
  }
  const latest = new WeakMap(); // container -> the newest draw asked for

  // Each chart is timed from the call of its function to the start of the first frame after its
  // plot was drawn (the frame that paints it), as a ``chart <name>`` performance measure
  // (bench/study_page.py reports them).
  let building = null; // {name, start} of the chart whose function is running
  function timed(f) {
    return function (container, ...args) {
      const outer = building;
      building = { name: container.dataset.chart || f.name, start: performance.now() };
      try { return f(container, ...args); } finally { building = outer; }
    };
  }
  function measure(timing) {
    if (!timing || !performance.measure) return;
    requestAnimationFrame(() => performance.measure(`chart ${timing.name}`, { start: timing.start }));
  }

  function empty(container, message) {
    latest.delete(container);
    if (drawn.has(container)) window.Plotly.purge(container);
    drawn.delete(container);
    clickable.delete(container);
    container.replaceChildren(Object.assign(document.createElement("div"), { className: "empty", textContent: message }));
    measure(building);
  }

  // Plotly sizes a chart when it draws it and on window resizes; a panel that changes width
  // with the page's layout (a grid gaining a column) is resized here.
  // Only a change of width redraws (the layouts fix the height); the first notification, which
  // comes as soon as a chart is observed, records the width it was drawn at.
  const widths = new WeakMap();
  const resizer = window.ResizeObserver ? new ResizeObserver((entries) => {
    for (const e of entries) {
      const width = Math.round(e.contentRect.width), known = widths.get(e.target);
      widths.set(e.target, width);
      if (known === undefined || known === width || !drawn.has(e.target)) continue;
      const [traces, layout] = drawn.get(e.target);
      drawn.set(e.target, [traces, { ...layout, width }]);
      window.Plotly.react(e.target, traces, themed({ ...layout, width }), CONFIG);
    }
  }) : null;

  function draw(container, traces, layout, onClick, timing = building) {
    if (!window.Plotly) {
      const token = {};
      latest.set(container, token);
      return loadPlotly().then(() => { if (latest.get(container) === token) return draw(container, traces, layout, onClick, timing); });
    }
    latest.delete(container);
    if (!drawn.has(container)) {
      container.textContent = "";
      if (resizer) resizer.observe(container);
    }
    drawn.set(container, [traces, layout]);
    return window.Plotly.react(container, traces, themed(layout), CONFIG).then(() => {
      measure(timing);
      if (!onClick || clickable.has(container)) return;
      clickable.add(container);
      container.on("plotly_click", (ev) => { const n = ev.points?.[0]?.customdata; if (n !== undefined && n !== null) onClick(n); });
    });
  }

  if (window.matchMedia) {
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
      for (const [container, [traces, layout]] of drawn) window.Plotly.react(container, traces, themed(layout), CONFIG);
    });
  }

  const title = (text) => ({ text });
  // Past a thousand markers SVG gets slow; WebGL draws 10,000 trials at once.
  const scatter = (n) => (n > 1000 ? "scattergl" : "scatter");
  // Parallel coordinates draw a line per trial; past this many, the best half of the cap and
  // an even sample of the rest are drawn.
  const PARALLEL_MAX = 1000;
  // Trials drawn as markers over a contour: as many as SVG draws quickly, so that the chart
  // needs no WebGL context of its own (drawn in software, the dearest part of a chart).
  const CONTOUR_MARKERS = 1000;
  // Whole-number axes (trials, epochs) with few values get a tick per value, not 0.5 steps.
  const integerTicks = (values) => (values.length && Math.max(...values) - Math.min(...values) <= 12 ? { dtick: 1 } : {});
  const dirWord = (d) => (d === "maximize" ? "max" : "min");
  const better = (d) => (d === "maximize" ? (a, b) => a > b : (a, b) => a < b);
  const finite = (v) => typeof v === "number" && Number.isFinite(v);
  const label = (metrics, directions, i) => `${metrics[i]} (${dirWord(directions[i])})`;

  // A parameter's kind from the spec's search space, else from its values.
  function paramKind(name, space, values) {
    const s = (space || {})[name] || {};
    if (s.type === "categorical" || values.some((v) => typeof v !== "number")) {
      const choices = s.choices ? s.choices.map(String) : [...new Set(values.map(String))].sort();
      return { categorical: true, choices, log: false };
    }
    return { categorical: false, log: !!s.log };
  }

  // Optimisation history: each objective's values by trial number, with the best so far
  // (``bests`` from bestSoFar: its step line needs only the points where the best changed).
  function history(container, trials, metrics, directions, bests, onClick) {
    const done = trials.filter((t) => t.state === "complete" && t.values);
    if (!done.length) return empty(container, "No complete trials yet.");
    const traces = [], layout = { height: 300 * metrics.length, showlegend: true };
    metrics.forEach((metric, i) => {
      const axis = i ? String(i + 1) : "";
      const pts = done.filter((t) => finite(t.values[i]));
      traces.push({ type: scatter(pts.length), mode: "markers", name: metric, x: pts.map((t) => t.number), y: pts.map((t) => t.values[i]),
        customdata: pts.map((t) => t.number), xaxis: "x" + axis, yaxis: "y" + axis,
        hovertemplate: `trial %{x}<br>${metric} %{y}<extra></extra>` });
      traces.push({ type: "scatter", mode: "lines", name: `best ${metric}`, x: bests[i].x, y: bests[i].y,
        line: { shape: "hv", width: 2 }, xaxis: "x" + axis, yaxis: "y" + axis, hoverinfo: "skip" });
      layout["yaxis" + axis] = { title: title(label(metrics, directions, i)) };
      layout["xaxis" + axis] = { title: title("trial"), matches: i ? "x" : undefined, ...integerTicks(done.map((t) => t.number)) };
    });
    if (metrics.length > 1) layout.grid = { rows: metrics.length, columns: 1, pattern: "independent", roworder: "top to bottom" };
    draw(container, traces, layout, onClick);
  }

  // Learning curves: curves is [[number, [{step, metrics}]]].
  function curves(container, series, metric, onClick) {
    const traces = series.map(([number, steps]) => {
      const pts = steps.filter((s) => finite(s.metrics[metric]));
      return { type: "scatter", mode: "lines+markers", name: `trial ${number}`, x: pts.map((s) => s.step), y: pts.map((s) => s.metrics[metric]),
        customdata: pts.map(() => number), marker: { size: 4 }, hovertemplate: `trial ${number}<br>epoch %{x}<br>${metric} %{y}<extra></extra>` };
    }).filter((t) => t.x.length);
    if (!traces.length) return empty(container, metric ? `No per-epoch values of ${metric} yet.` : "No per-epoch metrics yet.");
    draw(container, traces, { height: 340, xaxis: { title: title("epoch"), automargin: true, ...integerTicks(traces.flatMap((t) => t.x)) }, yaxis: { title: title(metric) } }, onClick);
  }

  // Parallel coordinates over the complete trials that have every parameter: past
  // PARALLEL_MAX of them a sample (``sample``) unless ``every``. Returns how many were drawn, of
  // how many, and how many of those are the best.
  function parallel(container, trials, names, space, metrics, directions, objective, every) {
    const all = trials.filter((t) => t.state === "complete" && t.values && finite(t.values[objective]) && names.every((n) => t.params[n] !== null && t.params[n] !== undefined));
    if (!all.length || !names.length) return empty(container, "No complete trials with parameters yet.");
    const done = every ? all : sample(all, objective, directions[objective], PARALLEL_MAX);
    const dims = names.map((name) => {
      const values = done.map((t) => t.params[name]);
      const kind = paramKind(name, space, values);
      if (kind.categorical) {
        const index = new Map(kind.choices.map((c, i) => [c, i]));
        return { label: name, values: values.map((v) => index.get(String(v))), tickvals: kind.choices.map((_, i) => i), ticktext: kind.choices, range: [0, Math.max(kind.choices.length - 1, 1)] };
      }
      if (kind.log && values.every((v) => v > 0)) {
        const logs = values.map((v) => Math.log10(v));
        const lo = Math.floor(Math.min(...logs)), hi = Math.ceil(Math.max(...logs));
        const ticks = []; for (let e = lo; e <= hi; e++) ticks.push(e);
        return { label: name, values: logs, tickvals: ticks, ticktext: ticks.map((e) => `1e${e}`), range: [Math.min(...logs), Math.max(...logs)] };
      }
      return { label: name, values };
    });
    const y = done.map((t) => t.values[objective]);
    dims.push({ label: metrics[objective], values: y });
    const css_ = css("--fg");
    draw(container, [{ type: "parcoords", dimensions: dims, labelfont: { color: css_ }, tickfont: { color: css_ }, rangefont: { color: css_ },
      line: { color: y, colorscale: "Viridis", reversescale: directions[objective] === "minimize", showscale: true, colorbar: { title: title(metrics[objective]) } } }],
    { height: 380, margin: { l: 70, r: 70, t: 40, b: 30 } });
    return { shown: done.length, of: all.length, best: done.length < all.length ? PARALLEL_MAX / 2 : done.length, cap: PARALLEL_MAX };
  }

  // At most ``cap`` of the trials, in their order: the best cap/2 by the objective and an even
  // spread of the others.
  function sample(trials, objective, direction, cap) {
    if (trials.length <= cap) return trials;
    const sign = direction === "maximize" ? -1 : 1;
    const ranked = [...trials].sort((a, b) => sign * (a.values[objective] - b.values[objective]));
    const keep = new Set(ranked.slice(0, cap / 2));
    const rest = ranked.slice(cap / 2), step = rest.length / (cap - keep.size);
    for (let k = 0; k < cap - cap / 2; k++) keep.add(rest[Math.floor(k * step)]);
    return trials.filter((t) => keep.has(t));
  }

  // Slice: the objective against each parameter, one panel per parameter.
  function slice(container, trials, names, space, metrics, directions, objective, onClick) {
    const done = trials.filter((t) => t.state === "complete" && t.values && finite(t.values[objective]));
    if (!done.length || !names.length) return empty(container, "No complete trials with parameters yet.");
    const columns = Math.min(names.length, 3), rows = Math.ceil(names.length / columns);
    const traces = [], layout = { height: 280 * rows, showlegend: false, grid: { rows, columns, pattern: "independent", roworder: "top to bottom" } };
    names.forEach((name, k) => {
      const axis = k ? String(k + 1) : "";
      const pts = done.filter((t) => t.params[name] !== null && t.params[name] !== undefined);
      const kind = paramKind(name, space, pts.map((t) => t.params[name]));
      traces.push({ type: scatter(pts.length), mode: "markers", name, x: pts.map((t) => (kind.categorical ? String(t.params[name]) : t.params[name])),
        y: pts.map((t) => t.values[objective]), customdata: pts.map((t) => t.number), xaxis: "x" + axis, yaxis: "y" + axis,
        marker: { color: pts.map((t) => t.number), colorscale: "Viridis", size: 7, line: { width: 0.5, color: css("--line") }, showscale: k === 0, colorbar: { title: title("trial"), thickness: 10 } },
        hovertemplate: `trial %{customdata}<br>${name} %{x}<br>${metrics[objective]} %{y}<extra></extra>` });
      layout["xaxis" + axis] = { title: title(name), type: kind.categorical ? "category" : kind.log ? "log" : "linear",
        ...(kind.categorical ? { categoryorder: "array", categoryarray: kind.choices } : {}) };
      layout["yaxis" + axis] = { title: title(k % columns === 0 ? label(metrics, directions, objective) : "") };
    });
    draw(container, traces, layout, onClick);
  }

  // Contour of the objective over two parameters: the trials binned on a grid (mean per cell,
  // gaps interpolated), with the trials themselves on top. Returns how many are marked, of how
  // many.
  function contour(container, trials, xName, yName, space, metrics, directions, objective, onClick) {
    if (!xName || !yName || xName === yName) return empty(container, "Pick two different parameters.");
    const pts = trials.filter((t) => t.state === "complete" && t.values && finite(t.values[objective]) &&
      t.params[xName] !== null && t.params[xName] !== undefined && t.params[yName] !== null && t.params[yName] !== undefined);
    if (!pts.length) return empty(container, "No complete trials with both parameters yet.");
    const axis = (name) => {
      const values = pts.map((t) => t.params[name]);
      const kind = paramKind(name, space, values);
      if (kind.categorical) {
        const index = new Map(kind.choices.map((c, i) => [c, i]));
        return { kind, pos: values.map((v) => index.get(String(v))), centers: kind.choices.map((_, i) => i), cell: (p) => p, show: (c) => c,
          layout: { title: title(name), tickvals: kind.choices.map((_, i) => i), ticktext: kind.choices, range: [-0.5, kind.choices.length - 0.5] } };
      }
      const log = kind.log && values.every((v) => v > 0);
      const pos = values.map((v) => (log ? Math.log10(v) : v));
      let lo = Math.min(...pos), hi = Math.max(...pos);
      if (hi === lo) { lo -= 0.5; hi += 0.5; }
      const n = Math.min(25, Math.max(2, Math.ceil(Math.sqrt(pts.length) * 1.5)));
      const width = (hi - lo) / n;
      const centers = Array.from({ length: n }, (_, i) => lo + width * (i + 0.5));
      return { kind, pos, centers, cell: (p) => Math.min(n - 1, Math.floor((p - lo) / width)), show: (c) => (log ? 10 ** c : c),
        layout: { title: title(name), type: log ? "log" : "linear" } };
    };
    const ax = axis(xName), ay = axis(yName);
    // The grid is built from every trial; past CONTOUR_MARKERS the markers on top are every
    // k-th trial.
    const every = Math.max(1, Math.ceil(pts.length / CONTOUR_MARKERS));
    const shown = pts.map((_, i) => i).filter((i) => i % every === 0);
    const sums = ay.centers.map(() => ax.centers.map(() => [0, 0]));
    pts.forEach((t, i) => { const c = sums[ay.cell(ay.pos[i])][ax.cell(ax.pos[i])]; c[0] += t.values[objective]; c[1] += 1; });
    const z = sums.map((row) => row.map(([s, n]) => (n ? s / n : null)));
    const metric = metrics[objective];
    const traces = [
      { type: "contour", x: ax.centers.map(ax.show), y: ay.centers.map(ay.show), z, connectgaps: true, name: metric,
        colorscale: "Viridis", reversescale: directions[objective] === "minimize", contours: { coloring: "heatmap" },
        colorbar: { title: title(metric) }, hovertemplate: `${xName} %{x}<br>${yName} %{y}<br>${metric} %{z}<extra></extra>` },
      { type: "scatter", mode: "markers", name: "trials", x: shown.map((i) => ax.show(ax.pos[i])), y: shown.map((i) => ay.show(ay.pos[i])),
        customdata: shown.map((i) => pts[i].number), marker: { color: "#ffffff", size: 6, line: { color: "#111827", width: 1 } },
        hovertemplate: `trial %{customdata}<extra></extra>` },
    ];
    draw(container, traces, { height: 380, showlegend: false, xaxis: ax.layout, yaxis: ay.layout }, onClick);
    return { markers: shown.length, of: pts.length, every };
  }

  // Empirical distribution function of each objective over the complete trials.
  function edf(container, trials, metrics, directions) {
    const traces = metrics.map((metric, i) => {
      const ys = trials.filter((t) => t.state === "complete" && t.values && finite(t.values[i])).map((t) => t.values[i]).sort((a, b) => a - b);
      const axis = i ? String(i + 1) : "";
      // At most ~1000 steps: every k-th value (and the last) draws the same staircase.
      const every = Math.max(1, Math.ceil(ys.length / 1000));
      const at = ys.map((_, k) => k).filter((k) => k % every === every - 1 || k === ys.length - 1);
      return { type: "scatter", mode: "lines", name: metric, x: at.map((k) => ys[k]), y: at.map((k) => (k + 1) / ys.length), line: { shape: "hv" }, xaxis: "x" + axis, yaxis: "y" + axis };
    }).filter((t) => t.x.length);
    if (!traces.length) return empty(container, "No complete trials yet.");
    const layout = { height: 340, showlegend: metrics.length > 1 };
    metrics.forEach((metric, i) => {
      const axis = i ? String(i + 1) : "";
      layout["xaxis" + axis] = { title: title(label(metrics, directions, i)) };
      layout["yaxis" + axis] = { title: title(i ? "" : "fraction of trials"), range: [0, 1.02] };
    });
    if (metrics.length > 1) layout.grid = { rows: 1, columns: metrics.length, pattern: "independent" };
    draw(container, traces, layout);
  }

  // Timeline: one segment per trial from its start to its end (now, while it runs), a trace
  // per state. In SVG plotly makes each segment (a line broken at its gaps) a path of its own,
  // a second's styling at 10,000 trials, so past a thousand it is WebGL like the other scatters.
  // Times are milliseconds, which a date axis reads without parsing text.
  function timeline(container, trials, onClick) {
    const now = Date.now();
    const started = trials.filter((t) => t.datetime_start);
    if (!started.length) return empty(container, "No trial has started yet.");
    const byState = new Map();
    for (const t of started) {
      if (!byState.has(t.state)) byState.set(t.state, { x: [], y: [], customdata: [] });
      const start = Date.parse(t.datetime_start), end = t.datetime_complete ? Date.parse(t.datetime_complete) : now;
      const seg = byState.get(t.state);
      seg.x.push(start, Math.max(end, start + 1), null);
      seg.y.push(t.number, t.number, null);
      seg.customdata.push(t.number, t.number, null);
    }
    const width = Math.max(2, Math.min(12, 300 / started.length));
    const traces = [...byState.entries()].map(([state, seg]) => ({
      type: scatter(started.length), mode: "lines", name: state, ...seg, connectgaps: false,
      line: { color: STATE_COLORS[state] || "#6b7280", width },
      hovertemplate: `trial %{customdata} (${state})<br>%{x}<extra></extra>`,
    }));
    draw(container, traces, { height: Math.min(520, 140 + 16 * started.length), hovermode: "closest",
      xaxis: { type: "date", title: title("time") }, yaxis: { title: title("trial"), autorange: "reversed", ...integerTicks(started.map((t) => t.number)) } }, onClick);
  }

  // Trials not dominated on every objective (complete, with every value finite). Sorted
  // lexicographically (each objective turned into "lower is better"), a trial can only be
  // dominated by one before it, and only a trial on the front needs checking.
  function paretoFront(trials, directions) {
    const sign = directions.map((d) => (d === "maximize" ? -1 : 1));
    const pts = trials.filter((t) => t.state === "complete" && t.values && directions.every((_, i) => finite(t.values[i])));
    const key = (t) => sign.map((s, i) => s * t.values[i]);
    const keyed = pts.map((t) => [key(t), t]).sort(([a], [b]) => { for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i]; return 0; });
    const dominates = (a, b) => a.every((x, i) => x <= b[i]) && a.some((x, i) => x < b[i]);
    const front = [];
    for (const [k, t] of keyed) if (!front.some(([f]) => dominates(f, k))) front.push([k, t]);
    return { pts, front: front.map(([, t]) => t) };
  }

  function pareto(container, trials, metrics, directions, xi, yi, onClick) {
    const { pts, front } = paretoFront(trials, directions);
    if (!pts.length) return empty(container, "No complete trials yet.");
    const onFront = new Set(front);
    const others = pts.filter((t) => !onFront.has(t));
    const sorted = [...front].sort((a, b) => a.values[xi] - b.values[xi]);
    const accepted = pts.filter((t) => t.accepted === true);
    const xy = (list) => ({ x: list.map((t) => t.values[xi]), y: list.map((t) => t.values[yi]), customdata: list.map((t) => t.number) });
    const hover = `trial %{customdata}<br>${metrics[xi]} %{x}<br>${metrics[yi]} %{y}<extra></extra>`;
    const traces = [
      { type: scatter(others.length), mode: "markers", name: "dominated", ...xy(others), marker: { color: css("--muted"), size: 7, opacity: 0.6 }, hovertemplate: hover },
      { type: "scatter", mode: metrics.length === 2 ? "lines+markers" : "markers", name: "Pareto front", ...xy(sorted), marker: { color: "#dc2626", size: 9 }, line: { color: "#dc2626", width: 1 }, hovertemplate: hover },
    ];
    if (accepted.length) traces.push({ type: "scatter", mode: "markers", name: "accepted", ...xy(accepted), marker: { symbol: "star-open", size: 16, color: "#16a34a", line: { width: 2 } }, hovertemplate: hover });
    draw(container, traces, { height: 420, xaxis: { title: title(label(metrics, directions, xi)) }, yaxis: { title: title(label(metrics, directions, yi)) } }, onClick);
  }

  // Importance: horizontal bars, largest on top.
  function importance(container, importances, note) {
    const entries = Object.entries(importances || {}).filter(([, v]) => finite(v));
    if (!entries.length) return empty(container, note || "No importances.");
    entries.sort((a, b) => a[1] - b[1]);
    draw(container, [{ type: "bar", orientation: "h", x: entries.map(([, v]) => v), y: entries.map(([k]) => k),
      text: entries.map(([, v]) => v.toFixed(3)), textposition: "auto", hovertemplate: "%{y}: %{x:.3f}<extra></extra>" }],
    { height: Math.max(220, 80 + 32 * entries.length), margin: { l: 120, r: 20, t: 10, b: 40 }, xaxis: { title: title("importance"), rangemode: "tozero" } });
  }

  // Per-metric curve of one trial (trial page).
  function metricCurve(container, steps, metric) {
    const pts = steps.filter((s) => finite(s.metrics[metric]));
    if (!pts.length) return empty(container, `No values of ${metric}.`);
    draw(container, [{ type: "scatter", mode: "lines+markers", name: metric, x: pts.map((s) => s.step), y: pts.map((s) => s.metrics[metric]), marker: { size: 5 } }],
      { height: 240, margin: { l: 60, r: 16, t: 10, b: 44 }, xaxis: { title: title("epoch"), ...integerTicks(pts.map((s) => s.step)) }, yaxis: { title: title(metric) } });
  }

  // Several studies' best-so-far lines (comparison page): series is [{name, x, y}].
  function overlay(container, series, yTitle, onClick) {
    const traces = series.filter((s) => s.x.length).map((s) => ({ type: "scatter", mode: "lines", name: s.name, x: s.x, y: s.y, line: { shape: "hv", width: 2 } }));
    if (!traces.length) return empty(container, "No complete trials in these studies yet.");
    draw(container, traces, { height: 400, xaxis: { title: title("trial") }, yaxis: { title: title(yTitle) } }, onClick);
  }

  // Best so far of every objective, in one pass over the trials (by number): per objective
  // the points where the best changed and the last complete trial, which is all a step line
  // (shape "hv") needs; ``best`` is the final best value, or null.
  function bestSoFar(trials, directions) {
    const tests = directions.map(better);
    const out = directions.map(() => ({ x: [], y: [], best: null, last: null }));
    for (const t of trials) {
      if (t.state !== "complete" || !t.values) continue;
      for (let i = 0; i < out.length; i++) {
        const v = t.values[i], o = out[i];
        if (!finite(v)) continue;
        o.last = t.number;
        if (o.best === null || tests[i](v, o.best)) { o.best = v; o.x.push(t.number); o.y.push(v); }
      }
    }
    for (const o of out) if (o.last !== null && o.x[o.x.length - 1] !== o.last) { o.x.push(o.last); o.y.push(o.best); }
    return out;
  }

  const charts = { history, curves, parallel, slice, contour, edf, timeline, pareto, importance, metricCurve, overlay };
  for (const [name, f] of Object.entries(charts)) charts[name] = timed(f);
  window.TuneboardCharts = { ...charts, paretoFront, bestSoFar, empty, loaded: loadPlotly };
})();
