// The alert rule editor: one form for every kind and source of rule, showing the fields that apply. Saves
// through the rule API (POST new, PUT existing); the API's message lands beside the form and marks its field.
// Viewers get the same form disabled.
import { ApiError, del, get, patch, post, put } from "olly/api.js";
import { config } from "olly/config.js";
import { $, $$, h, flash } from "olly/dom.js";
import { time } from "olly/format.js";

const form = $("#rule-form");
const ruleId = config.ruleId;
const field = (name) => $(`#f-${name}`);
const value = (name) => field(name).value;
let rule = null;

const THRESHOLD_HINTS = {
  error_rate: "A fraction of the requests: 0.05 is 5 %.",
  request_rate: "Requests per second.",
  latency: "Milliseconds.",
};

// Show the fieldsets and fields of the chosen kind and source; anomaly rules cannot read logs.
function applyVisibility() {
  const kind = value("kind");
  const logs = field("source").querySelector('option[value="logs"]');
  logs.disabled = kind === "anomaly";
  if (kind === "anomaly" && value("source") === "logs") field("source").value = "red";
  const source = value("source");
  const figure = value("red_figure");
  for (const el of $$("[data-source]", form)) el.classList.toggle("hidden", el.dataset.source !== source);
  for (const el of $$("[data-kind]", form)) el.classList.toggle("hidden", !el.dataset.kind.split(" ").includes(kind));
  for (const el of $$("[data-figure]", form)) if (!el.dataset.kind || el.dataset.kind.split(" ").includes(kind)) el.classList.toggle("hidden", el.dataset.figure !== figure);
  $("#threshold-hint").textContent =
    source === "red" ? THRESHOLD_HINTS[figure] || "" : source === "logs" ? "Matching records in the window." : "Compared with each series' value.";
}

function number(name) {
  const raw = value(name).trim();
  return raw === "" ? null : Number(raw);
}

export function parseLabels(text) {
  const labels = {};
  text.split("\n").forEach((line, i) => {
    const trimmed = line.trim();
    if (!trimmed) return;
    const at = trimmed.indexOf("=");
    if (at < 1) throw new ApiError(400, `labels: line ${i + 1} needs name=value, got "${trimmed}"`);
    labels[trimmed.slice(0, at).trim()] = trimmed.slice(at + 1).trim();
  });
  return labels;
}

// The request body: the fields the chosen kind and source use (the API resets the others anyway).
function body() {
  const kind = value("kind");
  const source = value("source");
  const out = {
    name: value("name").trim(),
    description: value("description"),
    kind,
    source,
    severity: value("severity"),
    window_seconds: number("window_seconds"),
    for_seconds: number("for_seconds"),
    keep_firing_seconds: number("keep_firing_seconds"),
    labels: parseLabels(value("labels")),
    channels: [...field("channels").selectedOptions].map((o) => Number(o.value)),
    enabled: field("enabled").checked,
  };
  if (source === "red") {
    out.service = value("service").trim();
    out.operation = value("operation").trim();
    if (kind !== "absence") {
      out.red_figure = value("red_figure");
      if (out.red_figure === "latency") out.quantile = number("quantile");
    }
  } else if (source === "logs") {
    out.log_query = value("log_query").trim();
    out.log_min_severity = Number(value("log_min_severity"));
  } else {
    out.expr = value("expr").trim();
  }
  if (kind === "threshold") {
    out.comparator = value("comparator");
    out.threshold = number("threshold");
  } else if (kind === "anomaly") {
    out.comparator = value("comparator");
    out.anomaly_z = number("anomaly_z");
  }
  return out;
}

function fill(r) {
  for (const name of ["name", "description", "kind", "source", "severity", "service", "operation", "log_query", "expr", "comparator"]) {
    field(name).value = r[name] ?? "";
  }
  if (r.red_figure) field("red_figure").value = r.red_figure;
  for (const name of ["quantile", "threshold", "anomaly_z", "window_seconds", "for_seconds", "keep_firing_seconds"]) field(name).value = String(r[name]);
  const severity = field("log_min_severity");
  if (![...severity.options].some((o) => Number(o.value) === r.log_min_severity)) {
    severity.append(h("option", { value: r.log_min_severity }, String(r.log_min_severity)));
  }
  severity.value = String(r.log_min_severity);
  field("labels").value = Object.entries(r.labels || {}).map(([k, v]) => `${k}=${v}`).join("\n");
  field("enabled").checked = r.enabled;
  const toggle = $("#toggle");
  if (toggle) toggle.textContent = r.enabled ? "Disable" : "Enable";
  const by = r.created_by ? ` by ${r.created_by}` : "";
  $("#meta").textContent = `Created${by} ${time(r.created_at, false)}; last changed ${time(r.updated_at, false)}.`;
  applyVisibility();
}

function showError(err) {
  for (const el of $$("[aria-invalid]", form)) el.removeAttribute("aria-invalid");
  const message = err.message || String(err);
  $("#form-error").textContent = message;
  const fields = message
    .split("; ")
    .map((part) => /^([a-z_]+):/.exec(part)?.[1])
    .filter((name) => name && field(name));
  fields.forEach((name) => field(name).setAttribute("aria-invalid", "true"));
  const first = fields.map(field).find((el) => !el.closest(".hidden"));
  if (first) first.focus();
}

function clearError() {
  $("#form-error").textContent = "";
  for (const el of $$("[aria-invalid]", form)) el.removeAttribute("aria-invalid");
}

async function save(event) {
  event.preventDefault();
  if (!config.canWrite) return;
  clearError();
  const button = $("#save");
  button.disabled = true;
  try {
    const data = body();
    if (ruleId) await put(`/api/v1/alerts/rules/${ruleId}`, data);
    else await post("/api/v1/alerts/rules", data);
    window.location.assign("/alerts/");
  } catch (err) {
    showError(err);
    button.disabled = false;
  }
}

async function toggle() {
  clearError();
  try {
    rule = await patch(`/api/v1/alerts/rules/${ruleId}`, { enabled: !rule.enabled });
    fill(rule);
    flash(rule.enabled ? "Rule enabled: it is evaluated again." : "Rule disabled: it is no longer evaluated; its history is kept.");
  } catch (err) {
    showError(err);
  }
}

function confirmDelete() {
  const dialog = $("#confirm-delete");
  dialog.returnValue = "";
  dialog.showModal();
}

async function onDialogClose() {
  if ($("#confirm-delete").returnValue !== "delete") return;
  try {
    await del(`/api/v1/alerts/rules/${ruleId}`);
    window.location.assign("/alerts/");
  } catch (err) {
    showError(err);
  }
}

let operationsFor = null;
async function loadOperations() {
  const service = value("service").trim();
  if (!service || service === operationsFor) return;
  operationsFor = service;
  try {
    const start = Math.floor(Date.now() / 1000) - 86400;
    const answer = await get(`/api/v1/services/${encodeURIComponent(service)}/operations`, { start });
    $("#operations-list").replaceChildren(...answer.operations.map((o) => h("option", { value: o.operation })));
  } catch {
    $("#operations-list").replaceChildren(); // suggestions only: the field stays free text
  }
}

async function init() {
  const start = Math.floor(Date.now() / 1000) - 86400;
  const [channels, services, loaded] = await Promise.allSettled([
    get("/api/v1/alerts/channels"),
    get("/api/v1/services/names", { start }),
    ruleId ? get(`/api/v1/alerts/rules/${ruleId}`) : Promise.resolve(null),
  ]);
  if (channels.status === "fulfilled") {
    const list = channels.value.channels;
    field("channels").replaceChildren(...list.map((c) => h("option", { value: c.id }, `${c.name} (${c.kind})${c.enabled ? "" : " — disabled"}`)));
    if (!list.length) $("#channels-hint").textContent = "No channels yet: alerts show on the Alerts page only.";
  } else {
    flash(channels.reason.message, "error");
  }
  if (services.status === "fulfilled") {
    $("#services-list").replaceChildren(...services.value.services.map((name) => h("option", { value: name })));
  }
  if (loaded.status === "rejected") {
    flash(loaded.reason.message, "error");
    return;
  }
  if (loaded.value) {
    rule = loaded.value;
    fill(rule);
    const selected = new Set(rule.channels);
    for (const option of field("channels").options) option.selected = selected.has(Number(option.value));
    loadOperations();
  }
  applyVisibility();
  document.body.dataset.loaded = "true";
}

if (!config.canWrite) {
  for (const el of form.elements) el.disabled = true;
}
form.addEventListener("submit", save);
for (const name of ["kind", "source", "red_figure"]) field(name).addEventListener("change", applyVisibility);
field("service").addEventListener("change", loadOperations);
$("#toggle")?.addEventListener("click", toggle);
$("#delete")?.addEventListener("click", confirmDelete);
$("#confirm-delete")?.addEventListener("close", onDialogClose);
applyVisibility();
init();
