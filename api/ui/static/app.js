"use strict";
// Tuneboard web pages: read the JSON API with the key kept in localStorage.
(function () {
  const API = document.body.dataset.api;
  const KEY = document.documentElement.dataset.keyStore;
  const early = window.tuneboardEarly || new Map(); // path -> a read the page started before this script

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
  // toLocaleString's format, made once: each toLocaleString call builds a formatter anew.
  const localTime = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric" });
  const when = (iso) => (iso ? localTime.format(new Date(iso)) : "-");
  const params = (p) => Object.entries(p || {}).map(([k, v]) => `${k}=${fmt(v)}`).join(", ");

  function showError(msg) {
    const box = $("#error");
    box.textContent = msg;
    box.hidden = !msg;
  }

  async function api(path, options) {
    const key = localStorage.getItem(KEY);
    if (!key) throw new Error("Paste an API key above (tuneboard team create prints one).");
    const started = !options && early.get(path);
    early.delete(path);
    const res = await (started || fetch(API + path, {
      ...(options || {}),
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    }));
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

  // Resolved once the page has drawn its first data: its tables and the charts near the
  // viewport (tests and bench/study_page.py wait on it; ``data-ready`` on <body> says the same).
  let pageReady;
  window.tuneboardReady = new Promise((resolve) => { pageReady = () => { document.body.dataset.ready = "true"; resolve(); }; });
  const ROLE_RANK = { viewer: 0, member: 1, maintainer: 2, admin: 3 };
  let whoamiRole = Promise.resolve("viewer"); // the key's role, once /whoami has answered

  // The key bar. /whoami is asked in parallel with the page's own reads.
  function keyBar() {
    const input = $("#key-input");
    $("#key-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (input.value.trim()) localStorage.setItem(KEY, input.value.trim());
      location.reload();
    });
    $("#key-forget").addEventListener("click", () => { localStorage.removeItem(KEY); location.reload(); });
    if (!localStorage.getItem(KEY)) return false;
    input.placeholder = "replace key";
    whoamiRole = api("/whoami").then((me) => { $("#whoami").textContent = `${me.team} (${me.role})`; return me.role; });
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

  const FINISHED_STUDY = new Set(["completed", "cancelled", "failed"]);
  const FINISHED_TRIAL = new Set(["complete", "pruned", "fail"]);
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const charts = () => window.TuneboardCharts;
  const trialUrl = (id, number) => `/ui/studies/${id}/trials/${number}`;
  const seconds = (t) => (t.datetime_start && t.datetime_complete ? (Date.parse(t.datetime_complete) - Date.parse(t.datetime_start)) / 1000 : null);
  const acceptedCell = (v) => el("td", { class: v === true ? "yes" : v === false ? "no" : "" }, fmt(v));

  // Every page of a list route.
  async function paginate(path, limit) {
    const items = [];
    let cursor = null;
    do {
      const sep = path.includes("?") ? "&" : "?";
      const page = await api(`${path}${sep}limit=${limit || 500}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor);
    return items;
  }

  // The trial-table route's rows as objects (every trial, or those numbered ``from`` on).
  async function trialTable(id, from) {
    const table = await api(`/studies/${id}/trial-table${query({ from_number: from || "" })}`);
    const columns = table.columns, names = table.param_names, at = columns.indexOf("params");
    const trials = table.rows.map((row) => {
      const t = {};
      for (let i = 0; i < columns.length; i++) t[columns[i]] = row[i];
      const params = {}, values = row[at];
      for (let i = 0; i < names.length; i++) if (values[i] !== null) params[names[i]] = values[i];
      t.params = params;
      return t;
    });
    return { ...table, trials };
  }

  function card(k, v, cls) {
    return el("div", { class: "card" }, el("div", { class: "k" }, k), el("div", { class: `v ${cls || ""}` }, v));
  }

  // A select's options, keeping the current choice when it is still offered.
  function setOptions(select, options, preferred) {
    const current = select.value;
    const values = options.map(([v]) => String(v));
    if (values.join("\u0000") !== [...select.options].map((o) => o.value).join("\u0000")) {
      select.replaceChildren(...options.map(([v, text]) => el("option", { value: v }, text)));
    }
    select.value = values.includes(current) && current !== "" ? current : values.includes(String(preferred)) ? String(preferred) : values[0] || "";
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
      buffer += value.replace(/\r\n/g, "\n");
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

  // A sortable, filterable table of trials with the parameters as columns. Its header (and
  // the filter inputs in it) is built once per set of columns, so a live refresh keeps what
  // the user typed; rows are rendered a page at a time.
  function trialsTable(id, table, moreButton, countLabel) {
    let columns = [], key = "", sort = { index: 0, desc: false }, shown = 100, trials = [];
    const filters = [];
    const thead = table.querySelector("thead"), tbody = table.querySelector("tbody");
    const stateFilter = $("#trial-state");

    function define(metrics, paramNames) {
      const cols = [
        { label: "trial", get: (t) => t.number, num: true, cell: (t) => el("td", { class: "num" }, el("a", { href: trialUrl(id, t.number) }, `#${t.number}`)) },
        { label: "state", get: (t) => t.state, cell: (t) => el("td", { class: `trial-state state-${t.state}` }, t.state) },
        ...metrics.map((m, i) => ({ label: m, get: (t) => (t.values ? t.values[i] : null), num: true })),
        ...paramNames.map((p) => ({ label: p, get: (t) => t.params[p], param: true })),
        { label: "epochs", get: (t) => t.epochs_run, num: true },
        { label: "attempt", get: (t) => t.attempt, num: true },
        { label: "device", get: (t) => t.device },
        { label: "accepted", get: (t) => t.accepted, cell: (t) => acceptedCell(t.accepted) },
        { label: "seconds", get: seconds, num: true },
        { label: "started", get: (t) => t.datetime_start, cell: (t) => el("td", {}, when(t.datetime_start)) },
      ];
      const k = cols.map((c) => c.label).join("\u0000");
      if (k === key) return;
      key = k; columns = cols; filters.length = 0;
      const heads = cols.map((c, i) => el("th", { class: c.param ? "param" : "", onclick: () => { sort = { index: i, desc: sort.index === i ? !sort.desc : c.num }; render(); } }, c.label));
      const inputs = cols.map(() => {
        const input = el("input", { class: "col-filter", size: 6, placeholder: "filter" });
        input.addEventListener("input", () => { shown = 100; render(); });
        filters.push(input);
        return el("th", {}, input);
      });
      thead.replaceChildren(el("tr", { class: "sort-row" }, heads), el("tr", { class: "filter-row" }, inputs));
    }

    function matcher(text) {
      const m = /^\s*(>=|<=|!=|>|<|=)\s*(.+?)\s*$/.exec(text);
      if (m) {
        const num = Number(m[2]);
        return (v) => {
          if (v === null || v === undefined) return false;
          const a = typeof v === "number" && Number.isFinite(num) ? v : String(v), b = typeof v === "number" && Number.isFinite(num) ? num : m[2];
          return { ">=": a >= b, "<=": a <= b, "!=": a != b, ">": a > b, "<": a < b, "=": a == b }[m[1]]; // eslint-disable-line eqeqeq
        };
      }
      const needle = text.trim().toLowerCase();
      return (v) => fmt(v).toLowerCase().includes(needle);
    }

    function render() {
      const tests = filters.map((f, i) => [i, f.value.trim()]).filter(([, v]) => v).map(([i, v]) => [columns[i], matcher(v)]);
      const state = stateFilter.value;
      const rows = trials.filter((t) => (!state || t.state === state) && tests.every(([c, ok]) => ok(c.get(t))));
      const col = columns[sort.index], dir = sort.desc ? -1 : 1;
      rows.sort((a, b) => {
        const x = col.get(a), y = col.get(b);
        if (x === y) return a.number - b.number;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y))) * dir;
      });
      thead.querySelectorAll(".sort-row th").forEach((th, i) => { th.dataset.sort = i === sort.index ? (sort.desc ? "desc" : "asc") : ""; });
      tbody.replaceChildren(...rows.slice(0, shown).map((t) => el("tr", { "data-number": t.number },
        columns.map((c) => (c.cell ? c.cell(t) : el("td", { class: c.num ? "num" : "" }, fmt(c.get(t))))))));
      if (!rows.length) tbody.append(el("tr", {}, el("td", { colspan: columns.length, class: "muted" }, trials.length ? "No trial matches." : "No trials yet.")));
      moreButton.hidden = rows.length <= shown;
      countLabel.textContent = `(${rows.length} of ${trials.length})`;
    }

    moreButton.addEventListener("click", () => { shown += 500; render(); });
    stateFilter.addEventListener("change", () => { shown = 100; render(); });
    return { update(metrics, paramNames, list) { define(metrics, paramNames); trials = list; render(); } };
  }

  // Charts drawn when they come within MARGIN of the viewport, one per frame, nearest first: a
  // chart further down is drawn when the reader scrolls to it, so neither the first screen nor
  // a live refresh waits for charts nobody is looking at. A chart asked to redraw before it is
  // reached is drawn once, with its newest data, when it is. ``settled()`` resolves once no
  // chart near the viewport waits to be drawn.
  function lazyCharts() {
    const pending = new Map(); // container -> its newest drawing
    const near = new Set(), reported = new Set(); // reported: the observer has placed it
    let scheduled = false, waiters = [];
    const MARGIN = 300;
    // Those in the viewport first, top down, then the nearest below or above it.
    const rank = (c) => { const r = c.getBoundingClientRect(); return r.bottom < 0 ? innerHeight - r.bottom : Math.max(0, r.top); };
    const due = () => [...pending.keys()].filter((c) => near.has(c));
    function settle() {
      if (due().length || [...pending.keys()].some((c) => !reported.has(c))) return;
      for (const w of waiters) w();
      waiters = [];
    }
    function step() {
      scheduled = false;
      let next = null;
      for (const c of due()) if (next === null || rank(c) < rank(next)) next = c;
      if (next !== null) {
        const f = pending.get(next);
        pending.delete(next);
        try { f(); } catch (e) { showError(e.message); }
      }
      settle();
      schedule();
    }
    function schedule() {
      if (scheduled || !due().length) return;
      scheduled = true;
      requestAnimationFrame(() => setTimeout(step));
    }
    const observer = window.IntersectionObserver ? new IntersectionObserver((entries) => {
      for (const e of entries) {
        reported.add(e.target);
        if (e.isIntersecting) near.add(e.target); else near.delete(e.target);
      }
      schedule();
      settle();
    }, { rootMargin: `${MARGIN}px 0px` }) : null;
    const observed = new WeakSet();
    return {
      draw(container, f) {
        if (!observed.has(container)) {
          observed.add(container);
          if (observer) observer.observe(container); else { near.add(container); reported.add(container); }
        }
        pending.set(container, f);
        schedule();
      },
      settled() { return new Promise((r) => { waiters.push(r); settle(); }); },
    };
  }

  // A file from the API (the key goes in a header, which a plain link cannot send), saved
  // under the name the server gives it.
  async function download(path) {
    const res = await fetch(API + path, { headers: { Authorization: `Bearer ${localStorage.getItem(KEY)}` } });
    if (!res.ok) throw new Error(`download: HTTP ${res.status}`);
    const name = /filename="([^"]+)"/.exec(res.headers.get("content-disposition") || "");
    const url = URL.createObjectURL(await res.blob());
    const a = el("a", { href: url, download: name ? name[1] : "trials" });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  // Notes (newest first) and, for members, a form to add one. ``path`` is the notes route of
  // a study or of one trial.
  function notesPanel(root, path, studyId, canWrite) {
    const list = root.querySelector(".notes-list"), form = root.querySelector(".note-form");
    form.hidden = !canWrite;
    async function load() {
      const notes = await paginate(path, 200);
      list.replaceChildren(...(notes.length ? notes.map((n) => el("li", { class: "note", "data-note": n.id },
        el("div", { class: "note-meta muted" }, n.trial_number === null || n.trial_number === undefined ? "study" : el("a", { href: trialUrl(studyId, n.trial_number) }, `trial #${n.trial_number}`),
          ` - ${n.author}, ${when(n.created_at)}`),
        el("div", { class: "note-body" }, n.body))) : [el("li", { class: "muted" }, "No notes yet.")]));
    }
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const text = form.elements.body.value.trim();
      if (!text) return;
      api(path, { method: "POST", body: JSON.stringify({ body: text }) })
        .then(() => { form.elements.body.value = ""; return load(); }).catch((e) => showError(e.message));
    });
    return load;
  }

  async function studyPage() {
    const id = document.body.dataset.studyId;
    const C = charts();
    const view = { study: null, table: null, lb: null, best: [], curves: new Map(), picked: new Set(), importanceKey: null, importanceAt: 0, metricPicked: false, ensemble: undefined, parallelAll: false };
    const open = (n) => { location.href = trialUrl(id, n); };
    const table = trialsTable(id, $("#trials"), $("#more-trials"), $("#trials-count"));
    const lazy = lazyCharts();

    const metrics = () => view.study.metrics;
    const directions = () => view.study.directions;
    const objective = () => Number($("#objective").value || 0);
    const space = () => (view.study.spec || {}).search_space || {};
    const byNumber = () => new Map(view.table.trials.map((t) => [t.number, t]));

    function summary() {
      const s = view.study;
      const multi = s.metrics.length > 1;
      const done = s.counts.complete + s.counts.pruned + s.counts.fail;
      const budget = ((s.spec || {}).budget || {}).n_trials;
      const cards = [
        card("state", s.state, `state-${s.state}`),
        card("objective", s.metrics.map((m, i) => `${m} (${s.directions[i]})`).join(", ")),
      ];
      if (multi) {
        const { front } = C.paretoFront(view.table.trials, s.directions);
        cards.push(card("Pareto front", `${front.length} trial${front.length === 1 ? "" : "s"}`));
        s.metrics.forEach((m, i) => cards.push(card(`best ${m}`, fmt(view.best[i].best))));
      } else {
        const best = s.best_trial;
        cards.push(card("best", best ? `${fmt(best.value)} (#${best.number})` : "-"));
        const e = view.ensemble;
        if (e) {
          const gain = e.gain === null || e.gain === undefined ? "" : ` (${e.gain >= 0 ? "+" : ""}${fmt(e.gain)} over #${e.members[0]}'s ${fmt(e.best_single_value)})`;
          const shown = e.state === "complete" ? `${fmt(e.value)}${gain}` : e.state === "failed" ? `failed: ${e.error || ""}` : e.state;
          cards.push(el("div", { class: "card", id: "ensemble-card" }, el("div", { class: "k" }, `ensemble of top ${e.k}`),
            el("div", { class: `v ${e.state === "failed" ? "no" : ""}` }, shown)));
        }
      }
      cards.push(
        card("finished / budget", budget ? `${done} / ${budget}` : String(done)),
        card("complete / pruned / fail", `${s.counts.complete} / ${s.counts.pruned} / ${s.counts.fail}`),
        card("running / waiting", `${s.counts.running} / ${s.counts.waiting}`),
        card("standard", s.standard || "-"),
        card("created", when(s.created_at)),
        ...(s.finished_at ? [card("finished", when(s.finished_at))] : []),
        ...(s.stop_reason ? [el("div", { class: "card", id: "stop-reason" }, el("div", { class: "k" }, "stopped because"), el("div", { class: "v" }, s.stop_reason))] : []),
        ...(s.parent_id ? [el("div", { class: "card" }, el("div", { class: "k" }, "cloned from"),
          el("div", { class: "v" }, el("a", { id: "parent-link", href: `/ui/studies/${s.parent_id}` }, `study #${s.parent_id}`)))] : []),
        ...(s.error ? [card("error", s.error, "no")] : []),
        ...(s.override_reason ? [card("override", s.override_reason)] : []));
      $("#summary").replaceChildren(...cards);
      $("#cancel").hidden = !view.canWrite || FINISHED_STUDY.has(s.state) || s.state === "cancelling";
      $("#ensemble-form").hidden = !view.canWrite || multi || s.counts.complete < 2;
      $("#study-title").textContent = `${s.name} (#${s.id})`;
    }

    const readBoard = () => api(`/studies/${id}/leaderboard${query({ limit: 20, accepted_only: $("#accepted-only").checked })}`);
    async function board() {
      view.lb = await readBoard();
      renderBoard();
    }

    function renderBoard() {
      const lb = view.lb, ms = metrics();
      $("#leaderboard thead").replaceChildren(el("tr", {}, ["rank", "trial", ...ms, "accepted", "epochs", "params"].map((h) => el("th", {}, h))));
      $("#leaderboard tbody").replaceChildren(...lb.items.map((r) => el("tr", {},
        el("td", { class: "num" }, r.rank),
        el("td", { class: "num" }, el("a", { href: trialUrl(id, r.number) }, `#${r.number}`)),
        ...ms.map((_, i) => el("td", { class: "num" }, fmt(r.values ? r.values[i] : i ? null : r.value))),
        acceptedCell(r.accepted),
        el("td", { class: "num" }, r.epochs_run),
        el("td", {}, params(r.params)))));
      if (!lb.items.length) $("#leaderboard tbody").append(el("tr", {}, el("td", { colspan: ms.length + 5, class: "muted" }, "No complete trials yet.")));
    }

    // Curves of the leaderboard's top trials, the running trials and those the user added. A
    // trial's metrics are fetched again until the trial had finished when they were read.
    async function refreshCurves() {
      const trials = byNumber();
      const wanted = new Set([...view.lb.items.slice(0, 8).map((r) => r.number),
        ...view.table.trials.filter((t) => t.state === "running").slice(0, 5).map((t) => t.number), ...view.picked]);
      for (const n of [...view.curves.keys()]) if (!wanted.has(n)) view.curves.delete(n);
      await Promise.all([...wanted].map(async (n) => {
        const t = trials.get(n), cached = view.curves.get(n);
        if (!t || (cached && cached.final)) return;
        const final = FINISHED_TRIAL.has(t.state);
        const steps = await paginate(`/studies/${id}/trials/${n}/metrics`);
        view.curves.set(n, { steps, final });
      }));
      drawCurves();
    }

    function drawCurves() {
      const names = new Set();
      for (const { steps } of view.curves.values()) for (const s of steps) for (const n of Object.keys(s.metrics)) names.add(n);
      const ordered = [...metrics().filter((m) => names.has(m)), ...[...names].filter((n) => !metrics().includes(n)).sort()];
      const select = $("#curve-metric");
      const keep = view.metricPicked ? select.value : null;
      setOptions(select, ordered.map((n) => [n, n]), keep || metrics()[0]);
      if (!view.metricPicked && ordered.includes(metrics()[0])) select.value = metrics()[0];
      const series = [...view.curves.entries()].sort((a, b) => a[0] - b[0]).map(([n, c]) => [n, c.steps]);
      lazy.draw($("#chart-curves"), () => C.curves($("#chart-curves"), series, select.value, open));
    }

    // The charts drawn from the trials table. A choice of axes or objective redraws only the
    // charts that show it: the others keep their plots (drawn without a GPU, each costs seconds).
    function drawTrialCharts() {
      const trials = view.table.trials, best = view.best;
      lazy.draw($("#chart-history"), () => C.history($("#chart-history"), trials, metrics(), directions(), best, open));
      drawPareto();
      drawObjectiveCharts();
      lazy.draw($("#chart-edf"), () => C.edf($("#chart-edf"), trials, metrics(), directions()));
      lazy.draw($("#chart-timeline"), () => C.timeline($("#chart-timeline"), trials, open));
    }

    function drawPareto() {
      const ms = metrics(), ds = directions(), trials = view.table.trials;
      if (ms.length < 2) return;
      $("#pareto-panel").hidden = false;
      const options = ms.map((m, i) => [i, m]);
      setOptions($("#pareto-x"), options, 0);
      setOptions($("#pareto-y"), options, 1);
      const x = Number($("#pareto-x").value), y = Number($("#pareto-y").value);
      lazy.draw($("#chart-pareto"), () => C.pareto($("#chart-pareto"), trials, ms, ds, x, y, open));
    }

    function drawObjectiveCharts() {
      const ms = metrics(), ds = directions(), trials = view.table.trials, names = view.table.param_names, o = objective();
      drawParallel();
      lazy.draw($("#chart-slice"), () => C.slice($("#chart-slice"), trials, names, space(), ms, ds, o, open));
      drawContour();
    }

    // Past its cap the chart draws a sample, and says so; the button draws every trial (or the
    // sample again).
    function drawParallel() {
      const ms = metrics(), ds = directions(), trials = view.table.trials, names = view.table.param_names, o = objective();
      lazy.draw($("#chart-parallel"), () => {
        const shown = C.parallel($("#chart-parallel"), trials, names, space(), ms, ds, o, view.parallelAll);
        const sampled = !!shown && shown.shown < shown.of, capped = !!shown && shown.of > shown.cap;
        const count = (n) => n.toLocaleString("en");
        $("#parallel-note").textContent = sampled
          ? `Showing a sample: the best ${count(shown.best)} by ${ms[o]} and ${count(shown.shown - shown.best)} spread evenly over the other ${count(shown.of - shown.best)}, ${count(shown.shown)} of ${count(shown.of)} complete trials.`
          : capped ? `Showing all ${count(shown.of)} complete trials.` : "";
        const button = $("#parallel-all");
        button.hidden = !capped;
        button.textContent = sampled ? `show all ${count(shown.of)}` : "show a sample";
      });
    }

    function drawContour() {
      const ms = metrics(), ds = directions(), trials = view.table.trials, names = view.table.param_names, o = objective();
      const imp = Object.keys((view.importance || {}).importances || {});
      const ranked = [...imp.filter((n) => names.includes(n)), ...names.filter((n) => !imp.includes(n))];
      setOptions($("#contour-x"), names.map((n) => [n, n]), ranked[0]);
      setOptions($("#contour-y"), names.map((n) => [n, n]), ranked.find((n) => n !== $("#contour-x").value));
      const cx = $("#contour-x").value, cy = $("#contour-y").value;
      lazy.draw($("#chart-contour"), () => {
        const shown = C.contour($("#chart-contour"), trials, cx, cy, space(), ms, ds, o, open);
        $("#contour-note").textContent = shown && shown.markers < shown.of
          ? `shaded from all ${shown.of.toLocaleString("en")} trials, one in ${shown.every} marked` : "";
      });
    }

    // Importance again when the complete trials (or the choice of evaluator or objective)
    // changed; at most every 5 s while the study runs, and once more when it has finished.
    // Nothing waits for it, and one request is in flight at a time.
    let importanceTimer = null, importanceBusy = null;
    function importance(force) {
      if (importanceBusy) { importanceBusy.then(() => importance(force)); return importanceBusy; }
      const complete = view.study.counts.complete;
      const evaluator = $("#evaluator").value, o = objective();
      const k = `${complete}:${evaluator}:${o}`;
      if (!force && k === view.importanceKey) return Promise.resolve();
      const wait = view.importanceAt + 5000 - Date.now();
      if (!force && !FINISHED_STUDY.has(view.study.state) && wait > 0) {
        clearTimeout(importanceTimer);
        importanceTimer = setTimeout(() => importance(false), wait);
        return Promise.resolve();
      }
      view.importanceKey = k;
      view.importanceAt = Date.now();
      $("#importance-note").textContent = "computing...";
      importanceBusy = api(`/studies/${id}/importance${query({ evaluator, objective: metrics().length > 1 ? o : "" })}`).then((imp) => {
        view.importance = imp;
        $("#importance-note").textContent = imp.n_trials ? `${imp.evaluator} over ${imp.n_trials} complete trials (${imp.metric})` : "";
        $("#chart-importance").dataset.evaluator = imp.evaluator;
        lazy.draw($("#chart-importance"), () => C.importance($("#chart-importance"), imp.importances, imp.reason));
      }).catch((e) => showError(e.message)).finally(() => { importanceBusy = null; });
      return importanceBusy;
    }

    // The study's latest ensemble comes with the study itself (null when it has none); one
    // still being built is followed by re-reading the study every 2 s until it settles.
    function showEnsemble(e) {
      if (metrics().length > 1) return;
      view.ensemble = e || null;
      summary();
      if (e && (e.state === "pending" || e.state === "running")) {
        setTimeout(() => api(`/studies/${id}`).then((s) => showEnsemble(s.ensemble)).catch((err) => showError(err.message)), 2000);
      }
    }

    // The trials table, re-read from the oldest trial that can still change: finished trials
    // keep their values, so only the running and waiting ones and those after them are asked
    // for again (``full`` reads every trial: verdicts still pending can settle after the end).
    async function readTrials(full) {
      const known = view.table ? view.table.trials : [];
      let from = 0;
      if (!full && known.length) {
        const open_ = known.find((t) => !FINISHED_TRIAL.has(t.state));
        from = open_ ? open_.number : known[known.length - 1].number + 1;
      }
      const fresh = await trialTable(id, from);
      if (!view.table || from === 0) return { ...fresh, changed: true };
      const kept = known.filter((t) => t.number < from);
      const old = known.filter((t) => t.number >= from);
      const changed = JSON.stringify(old) !== JSON.stringify(fresh.trials);
      const names = [...view.table.param_names, ...fresh.param_names.filter((n) => !view.table.param_names.includes(n))];
      return { ...fresh, param_names: names, trials: kept.concat(fresh.trials), changed };
    }

    async function refreshAll(full) {
      const [study, tableData, lb] = await Promise.all([api(`/studies/${id}`), readTrials(full), readBoard()]);
      view.study = study;
      view.table = tableData;
      view.lb = lb;
      if (metrics().length > 1) setOptions($("#objective"), metrics().map((m, i) => [i, m]), 0);
      if (tableData.changed) view.best = C.bestSoFar(tableData.trials, directions());
      summary();
      renderBoard();
      importance(false);
      if (tableData.changed) {
        table.update(metrics(), view.table.param_names, view.table.trials);
        drawTrialCharts();
      }
      await refreshCurves();
    }

    // One refresh at a time, and at most one a second: events that arrive meanwhile ask for
    // one more.
    let running = null, again = false, wantFull = false, lastRefresh = 0, timer = null;
    function refresh(full) {
      wantFull = wantFull || !!full;
      if (running) { again = true; return running; }
      running = (async () => {
        do {
          again = false;
          const f = wantFull;
          wantFull = false;
          lastRefresh = Date.now();
          await refreshAll(f);
        } while (again);
      })().finally(() => { running = null; });
      return running;
    }
    function refreshSoon(full) {
      wantFull = wantFull || !!full;
      if (timer) return;
      timer = setTimeout(() => { timer = null; refresh().catch((e) => showError(e.message)); }, Math.max(0, lastRefresh + 1000 - Date.now()));
    }

    const loading = refresh(true);
    view.canWrite = ROLE_RANK[await whoamiRole] >= ROLE_RANK.member;
    const notes = notesPanel($("#notes"), `/studies/${id}/notes`, id, view.canWrite);
    await Promise.all([loading, notes()]);
    summary();
    showEnsemble(view.study.ensemble);
    // Ready once the first data is shown and every chart near the viewport drawn. plotly.js is
    // run by then even if no chart has needed it yet, so that a chart scrolled to later does
    // not wait for it.
    (async () => { await importanceBusy; await lazy.settled(); await C.loaded(); pageReady(); })().catch((e) => showError(e.message));
    $("#spec").textContent = JSON.stringify(view.study.spec, null, 2);
    if (metrics().length > 1) {
      $("#objective-row").hidden = false;
    }
    const guard = (f) => () => Promise.resolve(f()).catch((e) => showError(e.message));
    for (const [sel, fmtName] of [["#export-csv", "csv"], ["#export-parquet", "parquet"]]) {
      $(sel).addEventListener("click", (ev) => { ev.preventDefault(); download(`/studies/${id}/trials/export?format=${fmtName}`).catch((e) => showError(e.message)); });
    }
    $("#ensemble-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const k = Number($("#ensemble-k").value);
      api(`/studies/${id}/ensemble`, { method: "POST", body: JSON.stringify({ k }) })
        .then(showEnsemble).catch((e) => showError(e.message));
    });
    $("#accepted-only").addEventListener("change", guard(async () => { await board(); await refreshCurves(); }));
    $("#curve-metric").addEventListener("change", () => { view.metricPicked = true; drawCurves(); });
    $("#evaluator").addEventListener("change", () => importance(true));
    $("#objective").addEventListener("change", guard(() => { drawObjectiveCharts(); importance(true); }));
    for (const sel of ["#contour-x", "#contour-y"]) $(sel).addEventListener("change", guard(drawContour));
    $("#parallel-all").addEventListener("click", guard(() => { view.parallelAll = !view.parallelAll; drawParallel(); }));
    for (const sel of ["#pareto-x", "#pareto-y"]) $(sel).addEventListener("change", guard(drawPareto));
    $("#cancel").addEventListener("click", guard(async () => {
      if (!confirm("Cancel this study?")) return;
      await api(`/studies/${id}/cancel`, { method: "POST" });
      await refresh();
    }));

    if (FINISHED_STUDY.has(view.study.state)) return;
    // Live: events ask for a refresh (at most one a second); the stream is reopened until the
    // study has finished (it closes by itself after a while), and running curves are re-read
    // every few seconds in between. The end reads every trial once more.
    $("#live").hidden = false;
    const ticker = setInterval(() => { if (view.table.trials.some((t) => t.state === "running")) refreshCurves().catch(() => {}); }, 5000);
    try {
      while (!FINISHED_STUDY.has(view.study.state)) {
        try {
          await follow(`/studies/${id}/events`, async (event) => {
            if (event === "end") await refresh(true);
            else if (event === "progress") refreshSoon();
          });
        } catch (e) {
          showError(e.message);
          await sleep(2000);
        }
        await refresh(true);
      }
    } finally {
      clearInterval(ticker);
      clearTimeout(timer);
      $("#live").hidden = true;
    }
  }

  async function trialPage() {
    const id = document.body.dataset.studyId, number = Number(document.body.dataset.trial);
    const C = charts();
    const [study, trial, steps, tableData] = await Promise.all([
      api(`/studies/${id}`), api(`/studies/${id}/trials/${number}`), paginate(`/studies/${id}/trials/${number}/metrics`), trialTable(id)]);
    $("#study-link").textContent = `${study.name} (#${study.id})`;
    $("#trial-title").textContent = `Trial ${trial.number} of ${study.name}`;
    document.title = `Trial ${trial.number} of ${study.name} - Tuneboard`;
    const cards = [card("state", trial.state, `state-${trial.state}`)];
    study.metrics.forEach((m, i) => cards.push(card(m, fmt(trial.values ? trial.values[i] : i ? null : trial.value))));
    cards.push(card("accepted", fmt(trial.accepted), trial.accepted === true ? "yes" : trial.accepted === false ? "no" : ""),
      card("epochs", trial.epochs_run), card("attempt", trial.attempt), card("device", trial.device || "-"), card("seconds", fmt(seconds(trial))));
    $("#trial-summary").replaceChildren(...cards);

    const ps = Object.entries(trial.params || {});
    $("#trial-params tbody").replaceChildren(...(ps.length ? ps.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", { class: "num" }, fmt(v))))
      : [el("tr", {}, el("td", { colspan: 2, class: "muted" }, "No parameters."))]));

    const verdict = trial.verdict;
    if (!verdict) {
      $("#verdict").replaceChildren(el("p", { class: "muted" }, "No verdict: the study pins no standard, or the trial has not finished."));
    } else {
      const status = verdict.pending ? "pending" : verdict.accepted ? "accepted" : "rejected";
      $("#verdict").replaceChildren(
        el("p", { class: "verdict-head" }, el("strong", { class: verdict.pending ? "" : verdict.accepted ? "yes" : "no" }, status),
          verdict.standard ? ` against ${verdict.standard}` : "", verdict.note ? ` - ${verdict.note}` : ""),
        el("table", { id: "verdict-criteria", class: "grid" },
          el("thead", {}, el("tr", {}, ["criterion", "metric", "rule", "observed", "result", "detail"].map((h) => el("th", {}, h)))),
          el("tbody", {}, (verdict.criteria || []).map((c) => el("tr", { class: "criterion" },
            el("td", {}, c.kind), el("td", {}, c.metric), el("td", {}, `${c.op} ${fmt(c.threshold)}`),
            el("td", { class: "num" }, fmt(c.observed)),
            el("td", { class: c.pending ? "" : c.passed ? "yes" : "no" }, c.pending ? "pending" : c.passed ? "pass" : "fail"),
            el("td", {}, c.detail || ""))))));
    }

    const names = [...new Set(steps.flatMap((s) => Object.keys(s.metrics)))];
    const ordered = [...study.metrics.filter((m) => names.includes(m)), ...names.filter((n) => !study.metrics.includes(n)).sort()];
    // Every panel is laid out before any is drawn, so that each chart gets its final width.
    const curves = ordered.map((name) => [name, `metric-${name}`, steps, name]);
    if ((trial.intermediate_values || []).length) {
      curves.push(["reported to the pruner", "intermediate", trial.intermediate_values.map((s) => ({ step: s.step, metrics: { value: s.value } })), "value"]);
    }
    const panels = curves.map(([heading, key]) => el("section", { class: "panel" }, el("h3", {}, heading), el("div", { class: "chart", "data-chart": key })));
    $("#trial-metrics").replaceChildren(...(panels.length ? panels : [el("p", { class: "muted" }, "No per-epoch metrics.")]));
    curves.forEach(([, , data, metric], i) => C.metricCurve(panels[i].querySelector(".chart"), data, metric));

    if (trial.error) {
      $("#error-section").hidden = false;
      $("#trial-error").textContent = trial.error;
    }

    const retryOf = new Map(tableData.trials.map((t) => [t.number, t.retry_of]));
    const root = (n) => { const seen = new Set(); while (retryOf.get(n) !== null && retryOf.get(n) !== undefined && !seen.has(n)) { seen.add(n); n = retryOf.get(n); } return n; };
    const mine = root(number);
    const attempts = tableData.trials.filter((t) => root(t.number) === mine).sort((a, b) => a.attempt - b.attempt || a.number - b.number);
    $("#attempts tbody").replaceChildren(...attempts.map((t) => el("tr", { class: t.number === number ? "current" : "" },
      el("td", { class: "num" }, el("a", { href: trialUrl(id, t.number) }, `#${t.number}`)), el("td", { class: "num" }, t.attempt),
      el("td", { class: `state-${t.state}` }, t.state), el("td", {}, t.retry_of === null ? "-" : `#${t.retry_of}`),
      el("td", {}, t.worker || "-"), el("td", {}, t.device || "-"), el("td", {}, when(t.datetime_start)), el("td", {}, when(t.datetime_complete)))));

    const run = [["origin", trial.origin], ["seed", trial.seed], ["worker", trial.worker], ["device", trial.device],
      ["checkpoint", trial.checkpoint_path], ["retry of", trial.retry_of === null ? null : `#${trial.retry_of}`],
      ["started", when(trial.datetime_start)], ["finished", when(trial.datetime_complete)], ["last heartbeat", when(trial.heartbeat_at)],
      ["user attributes", Object.keys(trial.user_attrs || {}).length ? JSON.stringify(trial.user_attrs) : null]];
    $("#trial-run tbody").replaceChildren(...run.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", { class: "wrap" }, fmt(v)))));

    const canWrite = ROLE_RANK[await whoamiRole] >= ROLE_RANK.member;
    await notesPanel($("#notes"), `/studies/${id}/trials/${number}/notes`, id, canWrite)();
  }

  async function comparePage() {
    const C = charts();
    const form = $("#compare-form"), input = $("#compare-ids");
    form.addEventListener("submit", (ev) => { ev.preventDefault(); location.search = `?studies=${encodeURIComponent(input.value.replace(/\s+/g, ""))}`; });
    const ids = (document.body.dataset.studies || "").split(",").filter(Boolean);
    const chosen = new Set(ids);
    const list = await api("/studies?limit=100");
    $("#study-choices").replaceChildren(...list.items.map((s) => {
      const box = el("input", { type: "checkbox", value: s.id });
      box.checked = chosen.has(String(s.id));
      box.addEventListener("change", () => { if (box.checked) chosen.add(String(s.id)); else chosen.delete(String(s.id)); input.value = [...chosen].join(","); });
      return el("label", { class: "choice" }, box, ` #${s.id} ${s.name} (${s.state}, ${s.metrics.join(", ")})`);
    }));
    if (!ids.length) { $("#pick").open = true; C.empty($("#chart-compare"), "Pick two or more studies to compare."); return; }
    const loaded = await Promise.all(ids.map(async (sid) => {
      const [study, tableData] = await Promise.all([api(`/studies/${sid}`), trialTable(sid)]);
      return { study, trials: tableData.trials };
    }));
    $("#compare-best tbody").replaceChildren(...loaded.map(({ study: s }) => {
      const b = s.best_trial;
      return el("tr", {},
        el("td", {}, el("a", { href: `/ui/studies/${s.id}` }, `${s.name} (#${s.id})`)), el("td", { class: `state-${s.state}` }, s.state),
        el("td", {}, `${s.metrics[0]} (${s.directions[0]})`), el("td", { class: "num" }, b ? fmt(b.value) : "-"),
        el("td", { class: "num" }, b ? el("a", { href: trialUrl(s.id, b.number) }, `#${b.number}`) : "-"),
        el("td", {}, `${s.counts.complete} / ${s.counts.pruned} / ${s.counts.fail}`), el("td", {}, b ? params(b.params) : "-"));
    }));
    const series = loaded.map(({ study: s, trials }) => ({ name: `${s.name} (#${s.id}) ${s.metrics[0]}`, ...C.bestSoFar(trials, s.directions)[0] }));
    const metricNames = new Set(loaded.map(({ study: s }) => s.metrics[0]));
    C.overlay($("#chart-compare"), series, metricNames.size === 1 ? `best ${[...metricNames][0]}` : "best so far (first objective)");
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
    await Promise.all([compare(), usage(name)]);
  }

  // How the standard has been used: per version its studies and trials, and per criterion
  // how many judged trials passed, failed or still wait for evidence.
  async function usage(name) {
    const u = await api(`/standards/${name}/usage`);
    const best = (v) => (v.best_accepted.length ? v.best_accepted.map((b) => el("div", {},
      `${b.metric} ${fmt(b.value)} - `, el("a", { href: trialUrl(b.study_id, b.trial_number) }, `${b.study_name} #${b.trial_number}`))) : "-");
    $("#usage tbody").replaceChildren(...(u.versions.length ? u.versions.map((v) => el("tr", { "data-version": v.version },
      el("td", { class: "num" }, `v${v.version}`), el("td", {}, v.status),
      el("td", { class: "num" }, v.studies_total), el("td", { class: "num" }, v.overrides),
      el("td", { class: "num yes" }, v.trials.accepted), el("td", { class: "num no" }, v.trials.rejected),
      el("td", { class: "num" }, v.trials.pending), el("td", {}, best(v))))
      : [el("tr", {}, el("td", { colspan: 8, class: "muted" }, "No study uses this standard yet."))]));
    const rows = u.versions.flatMap((v) => v.criteria.map((c) => el("tr", { "data-version": v.version },
      el("td", { class: "num" }, `v${v.version}`), el("td", {}, c.kind), el("td", {}, c.metric), el("td", {}, `${c.op} ${fmt(c.threshold)}`),
      el("td", { class: "num yes" }, c.passed), el("td", { class: "num no" }, c.failed), el("td", { class: "num" }, c.pending))));
    $("#usage-criteria tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No judged trials yet."))]));
  }

  const pages = { studies: studiesPage, study: studyPage, trial: trialPage, compare: comparePage, leaderboard: leaderboardPage, standards: standardsPage, standard: standardPage };

  (async () => {
    try {
      if (!keyBar()) { showError("Paste an API key above (tuneboard team create prints one)."); return; }
      const page = pages[document.body.dataset.page];
      if (page) await page();
      if (page !== studyPage) pageReady();
      await whoamiRole;
    } catch (e) {
      showError(e.message);
    }
  })();
})();
