// One dashboard: a 12-column grid of panels (time series, stat, table) over PromQL or SQL; editing for
// editors (add, remove, reorder, change, "Run" preview, save with the version it was based on); Share; and a
// WebSocket that reloads the definition when someone saves and, with Live on, renders pushed panel data.
import { del, get, post, put, socket } from "olly/api.js";
import { timeSeries } from "olly/charts.js";
import { config } from "olly/config.js";
import { $, clear, flash, h } from "olly/dom.js";
import { count } from "olly/format.js";
import { bindRange, currentRange, rangeSeconds } from "olly/range.js";
import { sortableTable } from "olly/table.js";

const TYPES = [["timeseries", "Time series"], ["stat", "Stat"], ["table", "Table"]];
const LANGUAGES = [["promql", "PromQL"], ["sql", "SQL"]];
const WIDTHS = [[3, "Quarter"], [4, "Third"], [6, "Half"], [8, "Two thirds"], [12, "Full"]];
const MAX_SERIES = 30;
const NUMERIC = /^(Nullable\()?(U?Int|Float|Decimal)/;
const TIME = /^(Nullable\()?Date/;

let def = config.dashboard; // the stored definition
let draft = null; // panels being edited ({key, ...panel}); null when not editing
let range = currentRange();
let live = false;
let loadToken = 0;
let newKeys = 0;
let saving = false; // a save is in flight: its own change notification may arrive before its answer
let missed = 0;
const charts = new Map(); // panel key -> uPlot

const grid = $("#panels");
const keyOf = (panel) => panel.key || panel.id;
const shown = () => draft || def.panels;

// --- numbers and series --------------------------------------------------------------------------------

function number(value) {
  if (value === null || value === undefined || value === "") return "–";
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  const abs = Math.abs(n);
  if (abs >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (abs >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (abs >= 1000 || Number.isInteger(n)) return n.toLocaleString("en-US", { maximumFractionDigits: 1 });
  if (abs >= 1) return n.toFixed(2).replace(/\.?0+$/, "");
  return n.toPrecision(3).replace(/\.?0+$/, "");
}

const withUnit = (panel) => (v) => (panel.unit ? `${number(v)} ${panel.unit}` : number(v));

function seriesLabel(metric) {
  const name = metric.__name__ || "";
  const labels = Object.entries(metric)
    .filter(([k]) => k !== "__name__")
    .map(([k, v]) => `${k}="${v}"`)
    .join(", ");
  return labels ? `${name}{${labels}}` : name || "value";
}

function toSeconds(value) {
  if (typeof value === "number") return value > 1e11 ? value / 1000 : value;
  const text = String(value);
  const ms = Date.parse(`${text.slice(0, 23).replace(" ", "T")}Z`);
  return Number.isNaN(ms) ? null : ms / 1000;
}

const finite = (v) => {
  const n = typeof v === "number" ? v : parseFloat(v);
  return Number.isFinite(n) ? n : null;
};

// Aligns [{label, points: [[t, v]]}] on one sorted time axis spanning the range (r: {start, end}).
function align(lines, r) {
  const times = lines.flatMap((l) => l.points.map(([t]) => t));
  if (times.length && r) times.push(r.start, r.end);
  const xs = [...new Set(times)].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const series = lines.slice(0, MAX_SERIES).map((line) => {
    const values = new Array(xs.length).fill(null);
    for (const [t, v] of line.points) values[index.get(t)] = finite(v);
    return { label: line.label, values };
  });
  return { xs, series, dropped: Math.max(0, lines.length - MAX_SERIES) };
}

function promLines(result) {
  if (result.resultType === "matrix") {
    return result.result.map((s) => ({ label: seriesLabel(s.metric), points: s.values.map(([t, v]) => [Number(t), v]) }));
  }
  if (result.resultType === "vector") {
    return result.result.map((s) => ({ label: seriesLabel(s.metric), points: [[Number(s.value[0]), s.value[1]]] }));
  }
  if (result.resultType === "scalar") return [{ label: "value", points: [[Number(result.result[0]), result.result[1]]] }];
  return [];
}

// SQL as time series: the first Date/DateTime column (else the first column) is x; a text column splits
// the rows into one series per value; every numeric column is a series.
function sqlLines(result) {
  const cols = result.columns;
  if (!cols.length) return [];
  let x = cols.findIndex((c) => TIME.test(c.type));
  if (x < 0) x = 0;
  const numeric = cols.map((c, i) => i).filter((i) => i !== x && NUMERIC.test(cols[i].type));
  const split = cols.findIndex((c, i) => i !== x && !NUMERIC.test(c.type) && !TIME.test(c.type));
  const lines = new Map();
  for (const row of result.rows) {
    const t = toSeconds(row[x]);
    if (t === null) continue;
    for (const i of numeric) {
      const label = split >= 0 ? (numeric.length > 1 ? `${row[split]} ${cols[i].name}` : String(row[split])) : cols[i].name;
      if (!lines.has(label)) lines.set(label, { label, points: [] });
      lines.get(label).points.push([t, row[i]]);
    }
  }
  return [...lines.values()];
}

// --- rendering -----------------------------------------------------------------------------------------

function dropChart(key) {
  charts.get(key)?.destroy();
  charts.delete(key);
}

function showError(panel, body, message) {
  dropChart(keyOf(panel));
  body.classList.remove("chart-body");
  clear(body).append(h("div", { class: "message error", role: "alert" }, message));
}

function render(panel, body, result, r = range) {
  const key = keyOf(panel);
  dropChart(key);
  body.classList.toggle("chart-body", panel.type === "timeseries");
  clear(body);
  const sql = panel.language === "sql";
  if (panel.type === "timeseries") {
    const { xs, series, dropped } = align(sql ? sqlLines(result) : promLines(result), r);
    if (!xs.length || !series.length) {
      body.append(h("div", { class: "empty" }, "No data in this range."));
      return;
    }
    const el = h("div", { class: "chart", role: "img", "aria-label": `${panel.title || "Panel"}: ${series.length} series` });
    body.append(el);
    const legend = withUnit(panel);
    charts.set(key, timeSeries(el, xs, series.map((line) => ({ ...line, format: legend })), { format: number }));
    if (dropped) body.append(h("p", { class: "muted small" }, `Showing ${MAX_SERIES} of ${series.length + dropped} series.`));
  } else if (panel.type === "stat") {
    renderStat(panel, body, result, sql);
  } else {
    renderTable(body, result, sql);
  }
  if (sql && result.truncated) body.append(h("p", { class: "muted small" }, `Only the first ${count(result.rows.length)} rows.`));
}

function renderStat(panel, body, result, sql) {
  let value = null;
  let note = "";
  if (sql) {
    const row = result.rows[0];
    if (row) {
      const i = result.columns.findIndex((c) => NUMERIC.test(c.type));
      value = row[i >= 0 ? i : 0];
    }
  } else if (result.resultType === "scalar") {
    value = result.result[1];
  } else if (result.result.length) {
    const first = result.result[0];
    value = first.value ? first.value[1] : first.values.at(-1)[1];
    if (result.result.length > 1) note = `first of ${result.result.length} series: ${seriesLabel(first.metric)}`;
  }
  if (value === null || value === undefined) {
    body.append(h("div", { class: "empty" }, "No data in this range."));
    return;
  }
  body.append(h("div", { class: "stat", "data-value": String(value) }, number(value), panel.unit ? h("span", { class: "unit" }, panel.unit) : null));
  if (note) body.append(h("p", { class: "muted small stat-note" }, note));
}

function renderTable(body, result, sql) {
  let columns;
  let rows;
  if (sql) {
    columns = result.columns.map((c, i) => ({
      label: c.name,
      num: NUMERIC.test(c.type),
      key: (row) => row[i] ?? (NUMERIC.test(c.type) ? -Infinity : ""),
      render: (row) => (NUMERIC.test(c.type) ? number(row[i]) : row[i] === null ? "–" : typeof row[i] === "object" ? JSON.stringify(row[i]) : String(row[i])),
    }));
    rows = result.rows;
  } else {
    const samples = result.resultType === "scalar" ? [{ metric: {}, value: result.result }] : result.result.map((s) => ({ metric: s.metric, value: s.value || s.values.at(-1) }));
    const names = [...new Set(samples.flatMap((s) => Object.keys(s.metric)))].sort();
    columns = [
      ...names.map((name) => ({ label: name, key: (row) => row.metric[name] || "" })),
      { label: "value", num: true, key: (row) => finite(row.value[1]) ?? -Infinity, render: (row) => number(row.value[1]) },
    ];
    rows = samples;
  }
  // PromQL: the largest values first; SQL: by the first column (the query's ORDER BY is one click away)
  sortableTable(body, columns, rows, { sortBy: sql ? 0 : columns.length - 1, descending: !sql });
}

// --- data ----------------------------------------------------------------------------------------------

async function fetchPanel(panel, r) {
  if (panel.language === "sql") return post("/api/v1/sql", { query: panel.query });
  if (panel.type === "timeseries") {
    const step = Math.max(1, Math.ceil((r.end - r.start) / config.maxPoints));
    return (await get("/prometheus/api/v1/query_range", { query: panel.query, start: r.start, end: r.end, step })).data;
  }
  return (await get("/prometheus/api/v1/query", { query: panel.query, time: r.end })).data;
}

function bodyOf(panel) {
  return document.getElementById(`body-${keyOf(panel)}`);
}

async function loadPanel(panel, r, token) {
  const body = bodyOf(panel);
  if (!body) return;
  if (!panel.query.trim()) {
    showEmptyQuery(panel, body);
    return;
  }
  try {
    const result = await fetchPanel(panel, r);
    if (token === loadToken) render(panel, body, result, r);
  } catch (error) {
    if (token === loadToken) showError(panel, body, error.message);
  }
}

function showEmptyQuery(panel, body) {
  dropChart(keyOf(panel));
  clear(body).append(h("div", { class: "empty" }, draft ? "Write a query, then Run." : "This panel has no query."));
}

function loadAll(r) {
  range = r;
  const token = ++loadToken;
  return Promise.all(shown().map((panel) => loadPanel(panel, r, token)));
}

// --- the grid and the editor ---------------------------------------------------------------------------

function field(id, label, control, cls = "field") {
  return h("div", { class: cls }, h("label", { for: id }, label), control);
}

function select(id, options, value, onchange) {
  return h("select", { id, onchange }, options.map(([v, text]) => h("option", { value: v, selected: String(v) === String(value) }, text)));
}

function editor(panel, index, section) {
  const key = keyOf(panel);
  const rerun = () => loadPanel(panel, range, loadToken);
  const move = (delta) => {
    const target = index + delta;
    if (target < 0 || target >= draft.length) return;
    [draft[index], draft[target]] = [draft[target], draft[index]];
    renderGrid();
    loadAll(range);
    document.getElementById(`${key}-${delta < 0 ? "up" : "down"}`)?.focus();
  };
  return h(
    "div",
    { class: "panel-editor" },
    field(`${key}-title`, "Title", h("input", {
      type: "text", id: `${key}-title`, value: panel.title, maxlength: 200,
      oninput: (e) => {
        panel.title = e.target.value;
        section.querySelector("h2").textContent = panel.title || "Untitled panel";
      },
    })),
    field(`${key}-type`, "Type", select(`${key}-type`, TYPES, panel.type, (e) => {
      panel.type = e.target.value;
      rerun();
    })),
    field(`${key}-language`, "Language", select(`${key}-language`, LANGUAGES, panel.language, (e) => {
      panel.language = e.target.value;
      rerun();
    })),
    field(`${key}-width`, "Width", select(`${key}-width`, WIDTHS, panel.width, (e) => {
      panel.width = Number(e.target.value);
      section.style.gridColumn = `span ${panel.width}`;
    })),
    field(`${key}-unit`, "Unit", h("input", { type: "text", id: `${key}-unit`, value: panel.unit, maxlength: 32, placeholder: "ms, req/s, %", oninput: (e) => (panel.unit = e.target.value) })),
    field(`${key}-query`, "Query", h("textarea", {
      id: `${key}-query`, rows: 3, spellcheck: "false",
      placeholder: "PromQL: sum by (job) (rate(http_server_duration_milliseconds_count[5m]))  ·  SQL: SELECT service_name, count() FROM spans GROUP BY service_name",
      oninput: (e) => (panel.query = e.target.value),
      onkeydown: (e) => {
        if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
          e.preventDefault();
          rerun();
        }
      },
    }, panel.query), "field query"),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "primary", id: `${key}-run`, title: "Ctrl+Enter in the query", onclick: rerun }, "Run"),
      h("span", { class: "spacer" }),
      h("button", { type: "button", id: `${key}-up`, disabled: index === 0, onclick: () => move(-1) }, "Move up"),
      h("button", { type: "button", id: `${key}-down`, disabled: index === draft.length - 1, onclick: () => move(1) }, "Move down"),
      h("button", {
        type: "button", class: "danger", id: `${key}-remove`,
        onclick: () => {
          draft.splice(index, 1);
          dropChart(key);
          renderGrid();
          loadAll(range);
          $("#add-panel")?.focus();
        },
      }, "Remove"),
    ),
  );
}

function panelCard(panel, index) {
  const key = keyOf(panel);
  const section = h("section", {
    class: `panel dash-panel${draft ? " editing" : ""}`,
    style: { gridColumn: `span ${panel.width || 6}` },
    "aria-labelledby": `title-${key}`,
    dataset: { panel: key, type: panel.type },
  });
  section.append(
    h(
      "header",
      {},
      h("h2", { id: `title-${key}` }, panel.title || "Untitled panel"),
      panel.unit && panel.type === "timeseries" ? h("span", { class: "muted small" }, panel.unit) : null,
      h("span", { class: "badge" }, panel.language === "sql" ? "SQL" : "PromQL"),
    ),
  );
  if (draft) section.append(editor(panel, index, section));
  section.append(h("div", { class: "panel-body", id: `body-${key}` }, h("div", { class: "loading" }, "Loading…")));
  return section;
}

function renderGrid() {
  for (const key of [...charts.keys()]) dropChart(key);
  const panels = shown();
  clear(grid).append(...panels.map(panelCard));
  $("#no-panels").classList.toggle("hidden", panels.length > 0);
}

function renderHead() {
  $("#dash-name").textContent = def.name;
  document.title = `${def.name} · OllyStack`;
  $("#description").textContent = def.description;
}

// --- editing -------------------------------------------------------------------------------------------

const editButton = $("#edit");
const editbar = $("#editbar");

function startEditing() {
  draft = def.panels.map((p) => ({ ...p, key: p.id }));
  $("#edit-name").value = def.name;
  $("#edit-description").value = def.description;
  editbar.classList.remove("hidden");
  editButton.setAttribute("aria-pressed", "true");
  editButton.disabled = true;
  renderGrid();
  loadAll(range);
  $("#edit-name").focus();
}

function stopEditing() {
  draft = null;
  editbar.classList.add("hidden");
  editButton.setAttribute("aria-pressed", "false");
  editButton.disabled = false;
  renderGrid();
  loadAll(range);
}

async function save(event) {
  event.preventDefault();
  if (draft.length > config.maxPanels) {
    flash(`A dashboard holds at most ${config.maxPanels} panels.`, "error");
    return;
  }
  const body = {
    name: $("#edit-name").value,
    description: $("#edit-description").value,
    version: def.version,
    panels: draft.map(({ key, id, ...panel }) => (id ? { id, ...panel } : panel)),
  };
  const button = $("#save");
  button.disabled = true;
  saving = true;
  try {
    def = await put(`/api/v1/dashboards/${def.id}`, body);
    renderHead();
    stopEditing();
    flash(`Saved (version ${def.version}).`);
    editButton.focus();
    if (missed > def.version) reloadDefinition();
  } catch (error) {
    flash(error.message, "error");
  } finally {
    button.disabled = false;
    saving = false;
    missed = 0;
  }
}

if (editButton && editbar) {
  editButton.addEventListener("click", startEditing);
  editbar.addEventListener("submit", save);
  $("#cancel-edit").addEventListener("click", () => {
    stopEditing();
    flash("");
    editButton.focus();
  });
  $("#add-panel").addEventListener("click", () => {
    newKeys += 1;
    const panel = { key: `new${newKeys}`, title: "", type: "timeseries", language: "promql", query: "", unit: "", width: 6 };
    draft.push(panel);
    renderGrid();
    loadAll(range);
    document.getElementById(`${panel.key}-title`)?.focus();
  });
  $("#delete").addEventListener("click", async () => {
    if (!window.confirm(`Delete the dashboard “${def.name}” for everyone?`)) return;
    try {
      await del(`/api/v1/dashboards/${def.id}`);
      window.location.assign(`/dashboards/?tenant=${encodeURIComponent(config.tenant)}`);
    } catch (error) {
      flash(error.message, "error");
    }
  });
}

// --- share ---------------------------------------------------------------------------------------------

$("#share").addEventListener("click", async () => {
  const link = new URL(`/dashboards/${def.id}/`, window.location.origin);
  link.searchParams.set("tenant", config.tenant);
  link.searchParams.set("range", range.range);
  const refresh = new URLSearchParams(window.location.search).get("refresh");
  if (refresh && refresh !== "0") link.searchParams.set("refresh", refresh);
  const box = $("#share-box");
  const input = $("#share-link");
  input.value = link.toString();
  try {
    if (!navigator.clipboard) throw new Error("no clipboard");
    await navigator.clipboard.writeText(link.toString());
    box.classList.add("hidden");
    flash("Link copied to the clipboard.");
  } catch {
    box.classList.remove("hidden");
    input.focus();
    input.select();
  }
});

// --- live ----------------------------------------------------------------------------------------------

let ws = null;
let retries = 0;

function sendLive() {
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({ type: "live", on: live, range: rangeSeconds(range.range) }));
  }
}

async function reloadDefinition() {
  try {
    def = await get(`/api/v1/dashboards/${def.id}`);
  } catch (error) {
    flash(error.message, "error");
    return;
  }
  renderHead();
  renderGrid();
  loadAll(currentRange());
  flash(`Updated: someone saved version ${def.version}.`);
}

function onMessage(message) {
  if (message.type === "panel.data") {
    if (draft || message.version !== def.version) return;
    const panel = def.panels.find((p) => p.id === message.panel);
    const body = panel && bodyOf(panel);
    if (!body) return;
    if (message.error) showError(panel, body, message.error);
    else render(panel, body, message.result, message);
  } else if (message.type === "dashboard.changed") {
    if (message.version <= def.version) return;
    if (saving) missed = Math.max(missed, message.version);
    else if (draft) flash(`Someone saved version ${message.version} while you edit; saving now will be refused. Copy your changes, then reload.`, "error");
    else reloadDefinition();
  } else if (message.type === "dashboard.deleted") {
    flash("This dashboard was deleted.", "error");
  } else if (message.type === "error") {
    flash(message.error, "error");
  }
}

function connect() {
  ws = socket(`/ws/dashboards/${def.id}/`, {}, onMessage, {
    onClose: (event) => {
      if (event.code >= 4000 || retries >= 5) return; // refused (the reason came as a message) or gave up
      retries += 1;
      setTimeout(connect, 1000 * 2 ** retries);
    },
  });
  ws.addEventListener("open", () => {
    retries = 0;
    if (live) sendLive();
  });
}

$("#live").addEventListener("change", (event) => {
  live = event.target.checked;
  document.body.classList.toggle("live-on", live);
  sendLive();
});

// --- start ---------------------------------------------------------------------------------------------

renderHead();
renderGrid();
connect();
bindRange((r) => {
  loadAll(r);
  if (live) sendLive();
});
if (editButton && new URLSearchParams(window.location.search).get("edit")) {
  const u = new URL(window.location.href);
  u.searchParams.delete("edit");
  window.history.replaceState(null, "", u);
  startEditing();
}
