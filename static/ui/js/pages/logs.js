// Log explorer: filters in the URL, a severity histogram, records newest first (expandable), and a live tail.
import { ApiError, get, socket } from "olly/api.js";
import { stackedBars } from "olly/charts.js";
import { config } from "olly/config.js";
import { $, clear, flash, h } from "olly/dom.js";
import { count, time } from "olly/format.js";
import { bindRange, currentRange } from "olly/range.js";

const PAGE = 100;
const FILTERS = ["text", "service", "severity", "trace_id"];
const COLORS = {
  TRACE: "#a3aab5",
  DEBUG: "#6b7280",
  INFO: "#2563eb",
  WARN: "#d97706",
  ERROR: "#dc2626",
  FATAL: "#7f1d1d",
  UNSPECIFIED: "#cbd5e1",
};
const SEVERITY_CLASS = { WARN: "warning", ERROR: "error", FATAL: "error" };
const HIGHLIGHT_MS = 2500;

const form = $("#log-filters");
const list = $("#records");
const empty = $("#records-empty");
const older = $("#older");
const tailToggle = $("#tail-toggle");
const tailPause = $("#tail-pause");
const tailStatus = $("#tail-status");

let nextCursor = null;
let loading = 0;
let tail = null; // {ws, paused, buffered: []}
let rowId = 0;

// --- filters <-> URL ----------------------------------------------------------------------------------

// "key=value key2=\"a value\"" → [[key, value], ...]
function parseAttributes(text) {
  const pairs = [];
  for (const match of (text || "").matchAll(/([^\s=]+)=("([^"]*)"|\S*)/g)) {
    pairs.push([match[1], match[3] !== undefined ? match[3] : match[2]]);
  }
  return pairs;
}

function formatAttributes(pairs) {
  return pairs.map(([k, v]) => (/\s/.test(v) ? `${k}="${v}"` : `${k}=${v}`)).join(" ");
}

function filtersFromUrl() {
  const params = new URLSearchParams(window.location.search);
  const filters = {};
  for (const name of FILTERS) filters[name] = params.get(name) || "";
  filters.attributes = [...params.entries()].filter(([k]) => k.startsWith("attr.")).map(([k, v]) => [k.slice(5), v]);
  return filters;
}

function fillForm(filters) {
  for (const name of FILTERS) form.elements[name].value = filters[name];
  form.elements.attrs.value = formatAttributes(filters.attributes);
}

function filtersFromForm() {
  const filters = {};
  for (const name of FILTERS) filters[name] = form.elements[name].value.trim();
  filters.attributes = parseAttributes(form.elements.attrs.value);
  return filters;
}

function writeUrl(filters) {
  const u = new URL(window.location.href);
  for (const name of FILTERS) {
    if (filters[name]) u.searchParams.set(name, filters[name]);
    else u.searchParams.delete(name);
  }
  for (const key of [...u.searchParams.keys()]) if (key.startsWith("attr.")) u.searchParams.delete(key);
  for (const [k, v] of filters.attributes) u.searchParams.set(`attr.${k}`, v);
  window.history.replaceState(null, "", u);
}

// The query parameters of /api/v1/logs and /api/v1/logs/histogram for these filters and range.
function apiParams(filters, range) {
  const params = { start: range.start, end: range.end };
  for (const name of FILTERS) if (filters[name]) params[name] = filters[name];
  for (const [k, v] of filters.attributes) params[`attr.${k}`] = v;
  return params;
}

// --- records ------------------------------------------------------------------------------------------

function severityName(record) {
  const n = record.severityNumber || 0;
  if (!n) return record.severityText || "UNSPECIFIED";
  return ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"][Math.min(5, Math.floor((n - 1) / 4))];
}

function anyValue(value) {
  if (!value || typeof value !== "object") return "";
  if ("stringValue" in value) return value.stringValue;
  if ("intValue" in value) return String(value.intValue);
  if ("doubleValue" in value) return String(value.doubleValue);
  if ("boolValue" in value) return String(value.boolValue);
  if ("bytesValue" in value) return value.bytesValue;
  if ("arrayValue" in value) return JSON.stringify((value.arrayValue.values || []).map(anyValue));
  if ("kvlistValue" in value) {
    return JSON.stringify(Object.fromEntries((value.kvlistValue.values || []).map((kv) => [kv.key, anyValue(kv.value)])));
  }
  return JSON.stringify(value);
}

const nsToMs = (ns) => Number(BigInt(ns || "0") / 1000000n);
const isId = (hex) => Boolean(hex) && !/^0+$/.test(hex);

function attributeTable(title, attributes) {
  if (!attributes || !attributes.length) return h("div", {}, h("h3", {}, title), h("p", { class: "muted small" }, "None."));
  return h(
    "div",
    {},
    h("h3", {}, title),
    h(
      "table",
      { class: "data attrs" },
      h("tbody", {}, attributes.map((a) => h("tr", {}, h("th", { scope: "row" }, a.key), h("td", { class: "mono" }, anyValue(a.value))))),
    ),
  );
}

function details(record, id) {
  const facts = [
    ["Time", time(nsToMs(record.timeUnixNano))],
    ["Observed", record.observedTimeUnixNano && record.observedTimeUnixNano !== "0" ? time(nsToMs(record.observedTimeUnixNano)) : "–"],
    ["Severity", `${record.severityText || severityName(record)} (${record.severityNumber})`],
    ["Service", record.serviceName || "–"],
    [
      "Trace",
      isId(record.traceId)
        ? h("a", { href: `${config.tracesPath}${record.traceId}/`, class: "mono trace-link" }, record.traceId)
        : "–",
    ],
    ["Span", isId(record.spanId) ? h("span", { class: "mono" }, record.spanId) : "–"],
    ["Scope", [record.scope?.name, record.scope?.version].filter(Boolean).join(" ") || "–"],
  ];
  if (record.eventName) facts.push(["Event", record.eventName]);
  return h(
    "div",
    { class: "log-details", id, hidden: true },
    h("pre", { class: "log-body-full" }, anyValue(record.body)),
    h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    h("div", { class: "grid cols-2" }, attributeTable("Attributes", record.attributes), attributeTable("Resource attributes", record.resource?.attributes)),
  );
}

function row(record) {
  const severity = severityName(record);
  const id = `log-${++rowId}`;
  const panel = details(record, id);
  const toggle = h(
    "button",
    {
      type: "button",
      class: "log-row",
      "aria-expanded": "false",
      "aria-controls": id,
      onclick: () => {
        const open = toggle.getAttribute("aria-expanded") !== "true";
        toggle.setAttribute("aria-expanded", String(open));
        panel.hidden = !open;
      },
    },
    h("span", { class: "log-time mono" }, time(nsToMs(record.timeUnixNano))),
    h("span", { class: "log-severity" }, h("span", { class: `badge sev-${severity.toLowerCase()} ${SEVERITY_CLASS[severity] || ""}` }, severity)),
    h("span", { class: "log-service" }, record.serviceName || "–"),
    h("span", { class: "log-body mono" }, anyValue(record.body)),
  );
  return h("li", { class: "log-record", dataset: { trace: record.traceId || "" } }, toggle, panel);
}

function showEmpty() {
  empty.classList.toggle("hidden", list.children.length > 0);
}

// --- histogram ----------------------------------------------------------------------------------------

function drawHistogram(body) {
  const el = $("#histogram");
  const note = $("#histogram-note");
  if (!body.series.length) {
    clear(el).append(h("div", { class: "empty" }, "No log records in this range."));
  } else {
    stackedBars(
      el,
      body.times,
      body.series.map((s) => ({ label: s.severity, values: s.counts, color: COLORS[s.severity] })),
      { height: 140 },
    );
  }
  const total = body.series.reduce((sum, s) => sum + s.counts.reduce((a, b) => a + b, 0), 0);
  const width = body.step_seconds >= 60 ? `${body.step_seconds / 60} min` : `${body.step_seconds} s`;
  note.textContent = `${count(total)} records, ${width} per bar${body.partial ? " — only the newest matching records are counted" : ""}.`;
}

// --- loading ------------------------------------------------------------------------------------------

async function load(range) {
  const filters = filtersFromUrl();
  const params = apiParams(filters, range);
  const mine = ++loading;
  older.classList.add("hidden");
  try {
    const [page, histogram] = await Promise.all([
      get("/api/v1/logs", { ...params, limit: PAGE }),
      get("/api/v1/logs/histogram", params),
    ]);
    if (mine !== loading) return;
    flash("");
    clear(list).append(...page.records.map(row));
    nextCursor = page.next_cursor;
    older.classList.toggle("hidden", !nextCursor || Boolean(tail));
    showEmpty();
    drawHistogram(histogram);
  } catch (err) {
    if (mine !== loading) return;
    flash(err instanceof ApiError ? err.message : String(err), "error");
  }
}

async function loadOlder() {
  if (!nextCursor) return;
  const range = currentRange();
  older.disabled = true;
  try {
    const page = await get("/api/v1/logs", { ...apiParams(filtersFromUrl(), range), limit: PAGE, cursor: nextCursor });
    list.append(...page.records.map(row));
    nextCursor = page.next_cursor;
    older.classList.toggle("hidden", !nextCursor);
  } catch (err) {
    flash(err instanceof ApiError ? err.message : String(err), "error");
  } finally {
    older.disabled = false;
  }
}

// --- live tail ----------------------------------------------------------------------------------------

function addTailed(records) {
  // records come oldest first: each goes on top, so the newest ends up first
  for (const record of records) {
    const item = row(record);
    item.classList.add("fresh");
    list.prepend(item);
    setTimeout(() => item.classList.remove("fresh"), HIGHLIGHT_MS);
  }
  while (list.children.length > config.tailRows) list.lastElementChild.remove();
  showEmpty();
}

function setStatus(text) {
  tailStatus.textContent = text;
}

function startTail() {
  const filters = filtersFromUrl();
  const params = { service: filters.service, severity: filters.severity, text: filters.text };
  const state = { paused: false, buffered: [], refused: false };
  state.ws = socket(
    config.tailPath,
    params,
    (message) => {
      if (message.type === "error") {
        state.refused = true;
        flash(message.error, "error");
      } else if (message.type === "logs") {
        if (state.paused) {
          state.buffered.push(...message.records);
          state.buffered = state.buffered.slice(-config.tailRows);
          setStatus(`Paused — ${count(state.buffered.length)} new records waiting`);
        } else {
          addTailed(message.records);
        }
      }
    },
    {
      onClose: () => {
        if (tail === state) stopTail(state.refused ? "Live tail refused." : "Live tail disconnected.");
      },
    },
  );
  state.ws.addEventListener("open", () => {
    if (tail === state) setStatus("Tailing: new records appear at the top.");
  });
  tail = state;
  older.classList.add("hidden");
  tailToggle.setAttribute("aria-pressed", "true");
  tailToggle.textContent = "Stop live tail";
  tailPause.classList.remove("hidden");
  const ignored = filters.trace_id || filters.attributes.length ? " (trace and attribute filters do not apply to it)" : "";
  setStatus(`Connecting the live tail…${ignored}`);
}

function stopTail(message = "") {
  const state = tail;
  tail = null;
  if (state && state.ws.readyState <= WebSocket.OPEN) state.ws.close(1000);
  tailToggle.setAttribute("aria-pressed", "false");
  tailToggle.textContent = "Live tail";
  tailPause.classList.add("hidden");
  tailPause.setAttribute("aria-pressed", "false");
  tailPause.textContent = "Pause";
  older.classList.toggle("hidden", !nextCursor);
  setStatus(message);
}

function togglePause() {
  if (!tail) return;
  tail.paused = !tail.paused;
  tailPause.setAttribute("aria-pressed", String(tail.paused));
  tailPause.textContent = tail.paused ? "Resume" : "Pause";
  if (tail.paused) {
    setStatus("Paused — new records are kept until you resume.");
  } else {
    addTailed(tail.buffered);
    tail.buffered = [];
    setStatus("Tailing: new records appear at the top.");
  }
}

// --- wiring -------------------------------------------------------------------------------------------

async function serviceNames() {
  try {
    const { start, end } = currentRange();
    const body = await get("/api/v1/services/names", { start, end });
    $("#service-names").replaceChildren(...body.services.map((name) => h("option", { value: name })));
  } catch {
    // suggestions only: the field still takes any name
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const filters = filtersFromForm();
  writeUrl(filters);
  load(currentRange());
  if (tail) {
    stopTail();
    startTail();
  }
});
older.addEventListener("click", loadOlder);
tailToggle.addEventListener("click", () => (tail ? stopTail("Live tail stopped.") : startTail()));
tailPause.addEventListener("click", togglePause);
window.addEventListener("pagehide", () => tail && tail.ws.close(1000));

fillForm(filtersFromUrl());
bindRange(load);
serviceNames();
