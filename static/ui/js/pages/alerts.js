// Alerts: what fires or is pending now (kept current by ws/alerts/), the rules with their state, and the
// history of transitions. Edit controls are shown to editors only; the API refuses others anyway.
import { get, socket } from "olly/api.js";
import { config } from "olly/config.js";
import { $, h, flash } from "olly/dom.js";
import { percent, time } from "olly/format.js";
import { bindRange } from "olly/range.js";
import { sortableTable } from "olly/table.js";

const ACTIVE = new Set(["firing", "pending"]);
const HISTORY_LIMIT = 100;
const ruleUrl = (id) => `/alerts/rules/${id}/`;

let rules = new Map(); // id → rule
let now = new Map(); // "rule|series" → {rule_id, rule, series, labels, state, value, since}
let history = [];
let loading = false;
let buffered = [];

const key = (ruleId, series) => `${ruleId}|${series || ""}`;

function number(v) {
  if (v === null || v === undefined) return "–";
  const abs = Math.abs(v);
  if (abs !== 0 && (abs < 0.001 || abs >= 1e6)) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

// A rule's value as people read it: error rates in %, latencies in ms, rates per second.
export function formatValue(rule, v) {
  if (v === null || v === undefined) return "–";
  if (!rule || rule.kind === "absence") return number(v);
  if (rule.kind === "anomaly") return `z ${number(v)}`;
  if (rule.source === "red" && rule.red_figure === "error_rate") return percent(v);
  if (rule.source === "red" && rule.red_figure === "latency") return `${number(v)} ms`;
  if (rule.source === "red" && rule.red_figure === "request_rate") return `${number(v)}/s`;
  return number(v);
}

export function target(rule) {
  if (rule.source === "red") return rule.operation ? `${rule.service} · ${rule.operation}` : rule.service;
  if (rule.source === "logs") {
    const parts = [];
    if (rule.log_query) parts.push(`logs "${rule.log_query}"`);
    else parts.push("logs");
    if (rule.log_min_severity) parts.push(`severity ≥ ${rule.log_min_severity}`);
    return parts.join(", ");
  }
  return rule.expr;
}

export function condition(rule) {
  const window = `over ${rule.window_seconds}s`;
  const pending = rule.for_seconds ? ` for ${rule.for_seconds}s` : "";
  const figure =
    rule.source === "red"
      ? { error_rate: "error rate", request_rate: "requests", latency: `p${Math.round(rule.quantile * 100)} latency` }[rule.red_figure] || "value"
      : rule.source === "logs"
        ? "matching records"
        : "value";
  if (rule.kind === "absence") return `no data for ${rule.window_seconds}s`;
  if (rule.kind === "anomaly") {
    const direction = rule.comparator.startsWith(">") ? "above" : "below";
    return `${figure} ${rule.anomaly_z}σ ${direction} the last hour, ${window}${pending}`;
  }
  return `${figure} ${rule.comparator} ${formatValue({ ...rule, kind: "threshold" }, rule.threshold)} ${window}${pending}`;
}

function stateOf(rule) {
  let state = null;
  for (const alert of now.values()) {
    if (alert.rule_id !== rule.id) continue;
    if (alert.state === "firing") return "firing";
    state = "pending";
  }
  return state || (rule.enabled ? "ok" : "disabled");
}

function badge(state) {
  return h("span", { class: `badge ${state}` }, state);
}

function labelPills(labels) {
  const entries = Object.entries(labels || {});
  if (!entries.length) return h("span", { class: "muted" }, "—");
  return h("span", { class: "labels" }, entries.map(([k, v]) => h("span", { class: "label-pill" }, `${k}=${v}`)));
}

function drawNow(fresh) {
  const box = $("#now");
  const alerts = [...now.values()].sort((a, b) => (a.state === b.state ? new Date(b.since) - new Date(a.since) : a.state === "firing" ? -1 : 1));
  if (!alerts.length) {
    box.replaceChildren(h("div", { class: "empty" }, "Nothing is firing or pending."));
    return;
  }
  box.replaceChildren(
    h(
      "ul",
      { class: "alert-list" },
      alerts.map((a) => {
        const rule = rules.get(a.rule_id);
        return h(
          "li",
          { class: `alert-item ${a.state}${fresh === key(a.rule_id, a.series) ? " fresh" : ""}`, dataset: { rule: a.rule_id, state: a.state } },
          h("span", {}, badge(a.state), " ", rule ? h("span", { class: `badge ${rule.severity}` }, rule.severity) : null),
          h("span", {}, h("a", { href: ruleUrl(a.rule_id) }, a.rule), " ", labelPills(a.labels)),
          h("span", { class: "num", title: "last evaluated value" }, formatValue(rule, a.value)),
          h("span", { class: "muted small nowrap" }, `since ${time(a.since, false)}`),
        );
      }),
    ),
  );
}

function drawRules() {
  const columns = [
    { label: "Name", key: (r) => r.name.toLowerCase(), render: (r) => h("a", { href: ruleUrl(r.id) }, r.name) },
    { label: "Kind", key: (r) => r.kind },
    { label: "Target", key: (r) => target(r), render: (r) => h("span", { class: r.source === "promql" ? "mono" : "" }, target(r)) },
    { label: "Condition", key: (r) => condition(r) },
    { label: "Severity", key: (r) => ["critical", "error", "warning", "info"].indexOf(r.severity), render: (r) => h("span", { class: `badge ${r.severity}` }, r.severity), num: false },
    { label: "State", key: (r) => ["firing", "pending", "ok", "disabled"].indexOf(stateOf(r)), render: (r) => badge(stateOf(r)) },
    { label: "Enabled", key: (r) => (r.enabled ? 0 : 1), render: (r) => (r.enabled ? "yes" : h("span", { class: "state-off" }, "no")) },
  ];
  if (config.canWrite) columns.push({ label: "", render: (r) => h("a", { href: ruleUrl(r.id), "aria-label": `Edit ${r.name}` }, "Edit") });
  const list = [...rules.values()];
  if (!list.length) {
    $("#rules").replaceChildren(
      h("div", { class: "empty" }, config.canWrite ? "No alert rules yet: create one with New rule." : "No alert rules yet."),
    );
    return;
  }
  sortableTable($("#rules"), columns, list, { sortBy: 5, rowAttrs: (r) => ({ dataset: { rule: r.id } }) });
}

function drawHistory() {
  if (!history.length) {
    $("#history").replaceChildren(h("div", { class: "empty" }, "No alert has changed state yet."));
    return;
  }
  const table = h(
    "table",
    { class: "data" },
    h("thead", {}, h("tr", {}, ["Time", "Rule", "Labels", "Transition", "Value"].map((t, i) => h("th", { class: i === 4 ? "num" : "" }, t)))),
    h(
      "tbody",
      {},
      history.map((e) => {
        const rule = rules.get(e.rule_id);
        return h(
          "tr",
          { dataset: { rule: e.rule_id, to: e.to_state } },
          h("td", { class: "nowrap" }, time(e.at)),
          h("td", {}, h("a", { href: ruleUrl(e.rule_id) }, e.rule)),
          h("td", {}, labelPills(e.labels)),
          h("td", { class: "transition" }, badge(e.from_state), " → ", badge(e.to_state)),
          h("td", { class: "num" }, formatValue(rule, e.value)),
        );
      }),
    ),
  );
  $("#history").replaceChildren(table);
}

// One transition from the socket: the alert moves in (or out of) the list, the history grows at the top.
function applyChange(msg, { record = true } = {}) {
  const k = key(msg.rule_id, msg.series);
  const existing = now.get(k);
  if (existing && new Date(existing.changed) > new Date(msg.at)) return;
  if (ACTIVE.has(msg.to)) {
    now.set(k, { rule_id: msg.rule_id, rule: msg.rule, series: msg.series, labels: msg.labels, state: msg.to, value: msg.value, since: msg.at, changed: msg.at });
  } else {
    now.delete(k);
  }
  if (record) {
    history.unshift({ rule_id: msg.rule_id, rule: msg.rule, labels: msg.labels, from_state: msg.from, to_state: msg.to, value: msg.value, at: msg.at });
    history = history.slice(0, HISTORY_LIMIT);
  }
  drawNow(k);
  drawRules();
  drawHistory();
}

async function load() {
  loading = true;
  buffered = [];
  try {
    const [ruleList, states, events] = await Promise.all([
      get("/api/v1/alerts/rules"),
      get("/api/v1/alerts/states"),
      get("/api/v1/alerts/events", { limit: HISTORY_LIMIT }),
    ]);
    rules = new Map(ruleList.rules.map((r) => [r.id, r]));
    now = new Map(
      states.alerts.map((a) => [
        key(a.rule_id, a.series),
        { ...a, since: (a.state === "firing" ? a.firing_since : a.pending_since) || a.changed_at, changed: a.changed_at },
      ]),
    );
    history = events.events;
    // Transitions that arrived while the answers were on their way and are newer than them.
    const seen = new Set(history.map((e) => `${e.rule_id}|${e.series}|${e.to_state}|${new Date(e.at).getTime()}`));
    for (const msg of buffered) {
      const recorded = seen.has(`${msg.rule_id}|${msg.series}|${msg.to}|${new Date(msg.at).getTime()}`);
      applyChange(msg, { record: !recorded });
    }
    drawNow();
    drawRules();
    drawHistory();
    document.body.dataset.loaded = "true";
  } catch (err) {
    flash(err.message, "error");
  } finally {
    loading = false;
    buffered = [];
  }
}

function setLive(text, kind) {
  const live = $("#live");
  live.textContent = text;
  live.className = `live small ${kind === "on" ? "on" : kind === "off" ? "off" : "muted"}`;
}

// The live stream reconnects after a drop (a server restart), waiting a little longer each time.
function connect(attempt = 0) {
  let refused = false;
  const ws = socket("/ws/alerts/", {}, (msg) => {
    if (msg.type === "error") {
      refused = true;
      setLive("live updates refused", "off");
      flash(msg.error, "error");
      return;
    }
    if (msg.type !== "alert.state") return;
    if (loading) buffered.push(msg);
    applyChange(msg);
  }, {
    onClose: () => {
      if (refused) return;
      setLive("live updates paused, reconnecting…", "off");
      setTimeout(() => connect(attempt + 1), Math.min(30_000, 1000 * 2 ** attempt));
    },
  });
  ws.addEventListener("open", () => {
    setLive("live", "on");
    if (attempt > 0) load(); // transitions may have been missed while disconnected
    attempt = 0;
  });
}

connect();
bindRange(load);
