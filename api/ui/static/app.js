"use strict";
// Tuneboard web pages: read the JSON API with the key kept in localStorage.
(function () {
  const API = document.body.dataset.api;
  const KEY = "tuneboard.apiKey";
  const { lineChart, barChart } = window.TuneboardCharts;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children.flat()) node.append(c instanceof Node ? c : String(c ?? ""));
    return node;
  }
  const $ = (sel) => document.querySelector(sel);

  function fmt(v) {
    if (v === null || v === undefined) return "-";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : (+v.toPrecision(5)).toString();
    if (typeof v === "boolean") return v ? "yes" : "no";
    return String(v);
  }
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "-");
  const params = (p) => Object.entries(p || {}).map(([k, v]) => `${k}=${fmt(v)}`).join(", ");

  function showError(msg) {
    const box = $("#error");
    box.textContent = msg;
    box.hidden = !msg;
  }

  async function api(path, options) {
    const key = localStorage.getItem(KEY);
    if (!key) throw new Error("Paste an API key above (tuneboard team create prints one).");
    const res = await fetch(API + path, {
      ...(options || {}),
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    });
    const body = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
    if (!res.ok) {
      const err = body && body.error;
      const e = new Error(err ? `${res.status} ${err.code}: ${err.message}` : `HTTP ${res.status}`);
      e.status = res.status;
      throw e;
    }
    return body;
  }

  function query(obj) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(obj)) if (v !== "" && v !== null && v !== undefined && v !== false) q.set(k, v);
    const s = q.toString();
    return s ? `?${s}` : "";
  }

  // A paginated table: fetch(path(cursor)) -> {items, next_cursor}; row(item) -> <tr>.
  function pager(tbody, moreButton, path, row) {
    let cursor = null;
    async function load(reset) {
      if (reset) { tbody.textContent = ""; cursor = null; }
      const page = await api(path(cursor));
      for (const item of page.items) tbody.append(row(item));
      if (reset && !page.items.length) tbody.append(el("tr", {}, el("td", { colspan: 20, class: "muted" }, "Nothing here yet.")));
      cursor = page.next_cursor;
      if (moreButton) moreButton.hidden = !cursor;
    }
    if (moreButton) moreButton.addEventListener("click", () => load(false).catch((e) => showError(e.message)));
    return load;
  }

  async function keyBar() {
    const input = $("#key-input");
    $("#key-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (input.value.trim()) localStorage.setItem(KEY, input.value.trim());
      location.reload();
    });
    $("#key-forget").addEventListener("click", () => { localStorage.removeItem(KEY); location.reload(); });
    if (!localStorage.getItem(KEY)) return false;
    input.placeholder = "replace key";
    const me = await api("/whoami");
    $("#whoami").textContent = `${me.team} (${me.role})`;
    return true;
  }

  // --- pages -------------------------------------------------------------------------------

  async function studiesPage() {
    const form = $("#filters");
    const load = pager($("#studies tbody"), $("#more"), (cursor) => {
      const f = Object.fromEntries(new FormData(form));
      return "/studies" + query({ ...f, cursor, limit: 50 });
    }, (s) => el("tr", {},
      el("td", { class: "num" }, s.id),
      el("td", {}, el("a", { href: `/ui/studies/${s.id}` }, s.name)),
      el("td", { class: `state-${s.state}` }, s.state),
      el("td", {}, s.metrics.map((m, i) => `${m} (${s.directions[i] === "maximize" ? "max" : "min"})`).join(", ")),
      el("td", {}, s.standard || "-"),
      el("td", { class: "num" }, s.counts.complete),
      el("td", { class: "num" }, s.counts.pruned),
      el("td", { class: "num" }, s.counts.fail),
      el("td", { class: "num" }, s.counts.running + s.counts.waiting),
      el("td", {}, when(s.created_at))));
    form.addEventListener("submit", (ev) => { ev.preventDefault(); load(true).catch((e) => showError(e.message)); });
    await load(true);
  }

  async function studyPage() {
    const id = document.body.dataset.studyId;
    const study = await api(`/studies/${id}`);
    const metric = study.metrics[0];
    $("#study-title").textContent = `${study.name} (#${study.id})`;
    $("#spec").textContent = JSON.stringify(study.spec, null, 2);

    function summary(s) {
      const card = (k, v, cls) => el("div", { class: "card" }, el("div", { class: "k" }, k), el("div", { class: `v ${cls || ""}` }, v));
      const best = s.best_trial;
      $("#summary").replaceChildren(
        card("state", s.state, `state-${s.state}`),
        card("objective", s.metrics.map((m, i) => `${m} (${s.directions[i]})`).join(", ")),
        card("best", best ? `${fmt(best.value)} (#${best.number})` : "-"),
        card("complete / pruned / fail", `${s.counts.complete} / ${s.counts.pruned} / ${s.counts.fail}`),
        card("running / waiting", `${s.counts.running} / ${s.counts.waiting}`),
        card("standard", s.standard || "-"),
        card("created", when(s.created_at)),
        ...(s.error ? [card("error", s.error, "no")] : []),
        ...(s.override_reason ? [card("override", s.override_reason)] : []));
      $("#cancel").hidden = !["queued", "running"].includes(s.state);
    }
    summary(study);
    $("#cancel").addEventListener("click", async () => {
      if (!confirm("Cancel this study?")) return;
      try { await api(`/studies/${id}/cancel`, { method: "POST" }); summary(await api(`/studies/${id}`)); }
      catch (e) { showError(e.message); }
    });

    const curves = new Map();
    const curveMetric = $("#curve-metric");
    async function addCurve(number) {
      if (curves.has(number)) return;
      const steps = [];
      let cursor = null;
      do {
        const page = await api(`/studies/${id}/trials/${number}/metrics${query({ cursor, limit: 500 })}`);
        steps.push(...page.items);
        cursor = page.next_cursor;
      } while (cursor);
      curves.set(number, steps);
      const names = new Set([...curveMetric.options].map((o) => o.value));
      for (const s of steps) for (const n of Object.keys(s.metrics)) if (!names.has(n)) { names.add(n); curveMetric.append(el("option", {}, n)); }
      if (!curveMetric.value && names.has(metric)) curveMetric.value = metric;
      drawCurves();
    }
    function drawCurves() {
      const name = curveMetric.value || metric;
      const series = [...curves.entries()].map(([number, steps]) => ({
        label: `trial ${number}`,
        points: steps.filter((s) => s.metrics[name] !== undefined && s.metrics[name] !== null).map((s) => [s.step, s.metrics[name]]),
      }));
      lineChart($("#curves"), series, { xLabel: "epoch", empty: "No per-epoch metrics yet." });
    }
    curveMetric.addEventListener("change", drawCurves);

    async function board() {
      const lb = await api(`/studies/${id}/leaderboard${query({ limit: 20, accepted_only: $("#accepted-only").checked })}`);
      $("#leaderboard thead").replaceChildren(el("tr", {}, ["rank", "trial", lb.metric + (lb.multi_objective ? " (first objective)" : ""), "accepted", "epochs", "params"].map((h) => el("th", {}, h))));
      $("#leaderboard tbody").replaceChildren(...lb.items.map((r) => el("tr", {},
        el("td", { class: "num" }, r.rank),
        el("td", { class: "num" }, el("a", { class: "trial-link", onclick: () => addCurve(r.number).catch((e) => showError(e.message)) }, `#${r.number}`)),
        el("td", { class: "num" }, fmt(r.value)),
        el("td", { class: r.accepted === true ? "yes" : r.accepted === false ? "no" : "" }, fmt(r.accepted)),
        el("td", { class: "num" }, r.epochs_run),
        el("td", {}, params(r.params)))));
      return lb;
    }
    $("#accepted-only").addEventListener("change", () => board().catch((e) => showError(e.message)));
    const lb = await board();
    for (const r of lb.items.slice(0, 5)) await addCurve(r.number);
    if (!lb.items.length) drawCurves();

    async function importance() {
      const imp = await api(`/studies/${id}/importance${query({ evaluator: $("#evaluator").value })}`);
      const entries = Object.entries(imp.importances);
      barChart($("#importance"), entries, { empty: imp.reason || "No importances." });
    }
    $("#evaluator").addEventListener("change", () => importance().catch((e) => showError(e.message)));
    importance().catch((e) => showError(e.message));

    const loadTrials = pager($("#trials tbody"), $("#more-trials"), (cursor) => `/studies/${id}/trials${query({ cursor, limit: 50 })}`,
      (t) => el("tr", {},
        el("td", { class: "num" }, el("a", { class: "trial-link", onclick: () => addCurve(t.number).catch((e) => showError(e.message)) }, `#${t.number}`)),
        el("td", {}, t.state), el("td", { class: "num" }, fmt(t.value)), el("td", { class: "num" }, t.epochs_run),
        el("td", { class: "num" }, t.attempt), el("td", {}, t.device || "-"), el("td", {}, params(t.params))));
    $("#trials thead").replaceChildren(el("tr", {}, ["trial", "state", "value", "epochs", "attempt", "device", "params"].map((h) => el("th", {}, h))));
    await loadTrials(true);

    if (["queued", "running"].includes(study.state)) {
      $("#live").textContent = "live";
      follow(`/studies/${id}/events`, async (event, data) => {
        if (event !== "progress") return;
        summary(await api(`/studies/${id}`));
        await board();
        if (data.finished) { $("#live").textContent = ""; await loadTrials(true); }
      }).catch((e) => showError(e.message)).finally(() => { $("#live").textContent = ""; });
    }
  }

  // Server-sent events over fetch (EventSource cannot send the Authorization header).
  async function follow(path, onEvent) {
    const res = await fetch(API + path, { headers: { Authorization: `Bearer ${localStorage.getItem(KEY)}` } });
    if (!res.ok || !res.body) throw new Error(`events: HTTP ${res.status}`);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let event = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).trim();
        }
        if (data) await onEvent(event, JSON.parse(data));
      }
    }
  }

  async function leaderboardPage() {
    const form = $("#filters");
    const load = pager($("#team-leaderboard tbody"), $("#more"), (cursor) => {
      const f = Object.fromEntries(new FormData(form));
      return "/leaderboard" + query({ ...f, cursor, limit: 50 });
    }, (r) => el("tr", {},
      el("td", {}, `${r.metric} (${r.direction === "maximize" ? "max" : "min"})`),
      el("td", { class: "num" }, r.rank),
      el("td", {}, el("a", { href: `/ui/studies/${r.study_id}` }, r.study_name)),
      el("td", {}, r.dataset || "-"), el("td", {}, r.standard || "-"),
      el("td", { class: "num" }, `#${r.number}`), el("td", { class: "num" }, fmt(r.value)),
      el("td", { class: r.accepted === true ? "yes" : r.accepted === false ? "no" : "" }, fmt(r.accepted)),
      el("td", {}, params(r.params))));
    form.addEventListener("submit", (ev) => { ev.preventDefault(); load(true).catch((e) => showError(e.message)); });
    await load(true);
  }

  async function standardsPage() {
    const load = pager($("#standards tbody"), $("#more"), (cursor) => "/standards" + query({ cursor }),
      (s) => el("tr", {},
        el("td", {}, el("a", { href: `/ui/standards/${encodeURIComponent(s.name)}` }, s.name)),
        el("td", { class: "num" }, fmt(s.version ?? s.latest_version)),
        el("td", {}, s.status || "-"), el("td", {}, s.author || "-"),
        el("td", {}, s.changelog || ""), el("td", {}, when(s.created_at))));
    await load(true);
  }

  // Line diff of two texts (LCS), rendered as +/- lines.
  function lineDiff(a, b) {
    const x = a.split("\n"), y = b.split("\n");
    const n = x.length, m = y.length;
    const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--)
      L[i][j] = x[i] === y[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
    const out = [];
    let i = 0, j = 0;
    while (i < n && j < m) {
      if (x[i] === y[j]) { out.push([" ", x[i]]); i++; j++; }
      else if (L[i + 1][j] >= L[i][j + 1]) out.push(["-", x[i++]]);
      else out.push(["+", y[j++]]);
    }
    while (i < n) out.push(["-", x[i++]]);
    while (j < m) out.push(["+", y[j++]]);
    return out;
  }

  function sortedJson(v) {
    if (Array.isArray(v)) return v.map(sortedJson);
    if (v && typeof v === "object") return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortedJson(v[k])]));
    return v;
  }

  async function standardPage() {
    const name = encodeURIComponent(document.body.dataset.standard);
    const versions = [];
    let cursor = null;
    do {
      const page = await api(`/standards/${name}/versions${query({ cursor })}`).catch(() => null);
      if (!page) break;
      versions.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor);
    if (!versions.length) {
      const one = await api(`/standards/${name}`);
      versions.push(one);
    }
    versions.sort((a, b) => a.version - b.version);
    $("#versions tbody").replaceChildren(...versions.map((v) => el("tr", {},
      el("td", { class: "num" }, v.version), el("td", {}, v.status), el("td", {}, v.author || "-"),
      el("td", {}, v.changelog || ""), el("td", {}, when(v.created_at)))));
    const latest = versions[versions.length - 1];
    $("#document").textContent = JSON.stringify(latest.document, null, 2);
    const form = $("#diff-form");
    for (const sel of form.querySelectorAll("select")) for (const v of versions) sel.append(el("option", { value: v.version }, `v${v.version}`));
    form.elements.from.value = versions.length > 1 ? versions[versions.length - 2].version : latest.version;
    form.elements.to.value = latest.version;
    async function compare() {
      const a = form.elements.from.value, b = form.elements.to.value;
      const [va, vb] = await Promise.all([api(`/standards/${name}/versions/${a}`), api(`/standards/${name}/versions/${b}`)]);
      const lines = lineDiff(JSON.stringify(sortedJson(va.document), null, 2), JSON.stringify(sortedJson(vb.document), null, 2));
      $("#diff").replaceChildren(...lines.map(([op, text]) => el("div", { class: op === "+" ? "add" : op === "-" ? "del" : "" }, `${op} ${text}`)));
      const d = await api(`/standards/${name}/diff${query({ from: a, to: b })}`).catch((e) => ({ error: e.message }));
      $("#diff-summary").textContent = JSON.stringify(d, null, 2);
    }
    form.addEventListener("submit", (ev) => { ev.preventDefault(); compare().catch((e) => showError(e.message)); });
    await compare();
  }

  const pages = { studies: studiesPage, study: studyPage, leaderboard: leaderboardPage, standards: standardsPage, standard: standardPage };

  (async () => {
    try {
      if (!(await keyBar())) { showError("Paste an API key above (tuneboard team create prints one)."); return; }
      const page = pages[document.body.dataset.page];
      if (page) await page();
    } catch (e) {
      showError(e.message);
    }
  })();
})();
