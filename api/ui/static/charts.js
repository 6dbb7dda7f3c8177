"use strict";
// Small SVG charts: no dependencies, no network.
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

  function svg(tag, attrs) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }

  function ticks(lo, hi, n) {
    if (!(hi > lo)) return [lo];
    const step = Math.pow(10, Math.floor(Math.log10((hi - lo) / n)));
    const err = (n * step) / (hi - lo);
    const mult = err <= 0.15 ? 10 : err <= 0.35 ? 5 : err <= 0.75 ? 2 : 1;
    const s = step * mult;
    const out = [];
    for (let t = Math.ceil(lo / s) * s; t <= hi + s * 1e-9; t += s) out.push(+t.toPrecision(12));
    return out;
  }

  function label(v) {
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(1);
    return String(+v.toPrecision(4));
  }

  // series: [{label, points: [[x, y], ...]}]
  function lineChart(container, series, opts) {
    opts = opts || {};
    container.textContent = "";
    const pts = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p[1]));
    if (!pts.length) {
      container.textContent = opts.empty || "No data yet.";
      return;
    }
    const W = opts.width || 720, H = opts.height || 300, L = 56, R = 140, T = 10, B = 30;
    let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
    let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
    if (x0 === x1) { x0 -= 1; x1 += 1; }
    if (y0 === y1) { y0 -= Math.abs(y0) * 0.1 || 1; y1 += Math.abs(y1) * 0.1 || 1; }
    const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
    const sy = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", class: "chart-svg" });
    for (const t of ticks(y0, y1, 5)) {
      root.appendChild(svg("line", { x1: L, x2: W - R, y1: sy(t), y2: sy(t), class: "grid-line" }));
      const txt = svg("text", { x: L - 6, y: sy(t) + 4, "text-anchor": "end", class: "tick" });
      txt.textContent = label(t);
      root.appendChild(txt);
    }
    for (const t of ticks(x0, x1, 8)) {
      const txt = svg("text", { x: sx(t), y: H - 10, "text-anchor": "middle", class: "tick" });
      txt.textContent = label(t);
      root.appendChild(txt);
    }
    if (opts.xLabel) {
      const txt = svg("text", { x: W - R, y: H - 10, "text-anchor": "start", class: "tick" });
      txt.textContent = " " + opts.xLabel;
      root.appendChild(txt);
    }
    series.forEach((s, i) => {
      const color = COLORS[i % COLORS.length];
      const good = s.points.filter((p) => Number.isFinite(p[1]));
      if (!good.length) return;
      const d = good.map((p, j) => `${j ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
      const path = svg("path", { d, fill: "none", stroke: color, "stroke-width": 1.6 });
      const title = svg("title", {});
      title.textContent = s.label;
      path.appendChild(title);
      root.appendChild(path);
      const ly = T + 14 + i * 16;
      root.appendChild(svg("rect", { x: W - R + 10, y: ly - 9, width: 10, height: 10, fill: color }));
      const txt = svg("text", { x: W - R + 24, y: ly, class: "legend" });
      txt.textContent = s.label;
      root.appendChild(txt);
    });
    container.appendChild(root);
  }

  // entries: [[label, value]], drawn as horizontal bars, largest first.
  function barChart(container, entries, opts) {
    opts = opts || {};
    container.textContent = "";
    if (!entries.length) {
      container.textContent = opts.empty || "No data.";
      return;
    }
    const W = opts.width || 720, row = 22, L = 160, R = 70;
    const H = entries.length * row + 10;
    const max = Math.max(...entries.map((e) => e[1] || 0)) || 1;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", class: "chart-svg" });
    entries.forEach(([name, value], i) => {
      const y = 5 + i * row;
      const w = ((value || 0) / max) * (W - L - R);
      const txt = svg("text", { x: L - 8, y: y + 14, "text-anchor": "end", class: "tick" });
      txt.textContent = name;
      root.appendChild(txt);
      root.appendChild(svg("rect", { x: L, y: y + 3, width: Math.max(w, 1), height: row - 8, fill: COLORS[0] }));
      const val = svg("text", { x: L + w + 6, y: y + 14, class: "tick" });
      val.textContent = value == null ? "-" : (+value).toFixed(3);
      root.appendChild(val);
    });
    container.appendChild(root);
  }

  window.TuneboardCharts = { lineChart, barChart };
})();
