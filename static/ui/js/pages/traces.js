// Trace search: the form's state lives in the page URL (service, operation, min_duration, max_duration,
// status, limit, attr.<key>, range), so a search can be shared and the service page can link
// /traces/?service=payments. Results: a duration scatter (click a point to open the trace) and a table.
import { get, ApiError } from "olly/api.js";
import { $, h, clear, flash } from "olly/dom.js";
import { duration, count, time } from "olly/format.js";
import { bindRange, currentRange } from "olly/range.js";
import { scatter } from "olly/charts.js";
import { sortableTable } from "olly/table.js";
import { serviceColor } from "olly/trace-model.js";

const FIELDS = ["service", "operation", "min_duration", "max_duration", "status", "limit"];
const ATTR = "attr.";
const form = $("#trace-search");
const serviceSelect = $("#f-service");
const operationInput = $("#f-operation");
const attrInput = $("#f-attr");
const attrList = $("#f-attrs");
let attributes = []; // [[key, value]]
let plot = null;
let sequence = 0;
let servicesRange = null;

const traceHref = (id) => `/traces/${encodeURIComponent(id)}/`;

function readUrl() {
  const params = new URLSearchParams(window.location.search);
  for (const name of FIELDS) {
    const input = form.elements[name];
    const value = params.get(name);
    if (name === "service" && value && ![...serviceSelect.options].some((o) => o.value === value)) {
      serviceSelect.append(h("option", { value }, value));
    }
    if (value !== null) input.value = value;
    else input.value = name === "limit" ? "100" : "";
  }
  attributes = [...params.entries()].filter(([k]) => k.startsWith(ATTR)).map(([k, v]) => [k.slice(ATTR.length), v]);
  drawAttributes();
}

function writeUrl() {
  const u = new URL(window.location.href);
  for (const name of FIELDS) u.searchParams.delete(name);
  for (const key of [...u.searchParams.keys()]) if (key.startsWith(ATTR)) u.searchParams.delete(key);
  for (const name of FIELDS) {
    const value = form.elements[name].value.trim();
    if (value && !(name === "limit" && value === "100")) u.searchParams.set(name, value);
  }
  for (const [key, value] of attributes) u.searchParams.append(ATTR + key, value);
  if (u.toString() !== window.location.href) window.history.pushState(null, "", u);
}

function drawAttributes() {
  clear(attrList).append(
    ...attributes.map(([key, value], i) =>
      h(
        "li",
        { class: "chip" },
        h("code", {}, `${key}=${value}`),
        h(
          "button",
          {
            type: "button",
            class: "chip-remove",
            "aria-label": `Remove filter ${key}=${value}`,
            onclick: () => {
              attributes.splice(i, 1);
              drawAttributes();
              search();
            },
          },
          "×",
        ),
      ),
    ),
  );
}

// "key=value" from the attribute input; false (with a message) when it is not that.
function addAttribute() {
  const text = attrInput.value.trim();
  if (!text) return true;
  const at = text.indexOf("=");
  if (at <= 0) {
    flash(`Attribute filter "${text}" needs the form key=value, e.g. http.route=/checkout`, "error");
    attrInput.focus();
    return false;
  }
  const key = text.slice(0, at).trim();
  attributes = attributes.filter(([k]) => k !== key);
  attributes.push([key, text.slice(at + 1).trim()]);
  attrInput.value = "";
  drawAttributes();
  return true;
}

async function loadServices(range) {
  const key = `${range.range}`;
  if (servicesRange === key) return;
  servicesRange = key;
  const chosen = serviceSelect.value;
  try {
    const data = await get("/api/v1/services/names", { start: range.start, end: range.end });
    const names = new Set(data.services);
    if (chosen) names.add(chosen);
    clear(serviceSelect).append(
      h("option", { value: "" }, "Any service"),
      ...[...names].sort().map((name) => h("option", { value: name }, name)),
    );
    serviceSelect.value = chosen;
  } catch (err) {
    servicesRange = null;
    flash(`Services could not be listed: ${err.message}`, "error");
  }
  loadOperations();
}

async function loadOperations() {
  const list = $("#f-operations");
  const service = serviceSelect.value;
  if (!service) {
    clear(list);
    return;
  }
  const range = currentRange();
  try {
    const data = await get(`/api/v1/services/${encodeURIComponent(service)}/operations`, {
      start: range.start,
      end: range.end,
    });
    if (serviceSelect.value !== service) return;
    clear(list).append(...data.operations.map((o) => h("option", { value: o.operation })));
  } catch (err) {
    flash(`Operations of ${service} could not be listed: ${err.message}`, "error");
  }
}

function drawScatter(traces) {
  const box = $("#scatter");
  if (plot) {
    plot.destroy();
    plot = null;
  }
  if (!traces.length) {
    clear(box).append(h("div", { class: "empty" }, "No traces in this range."));
    return;
  }
  const points = traces.map((t) => ({
    x: Number(BigInt(t.start_time_unix_nano) / 1000n) / 1e6,
    y: t.duration_ns / 1e6,
    error: t.error_count > 0,
    id: t.trace_id,
  }));
  plot = scatter(box, points, { format: duration, onPick: (p) => window.location.assign(traceHref(p.id)) });
}

function drawTable(traces) {
  const columns = [
    {
      label: "Start",
      key: (t) => Number(BigInt(t.start_time_unix_nano) / 1_000_000n),
      render: (t) => h("span", { class: "nowrap" }, time(Number(BigInt(t.start_time_unix_nano) / 1_000_000n))),
    },
    {
      label: "Root",
      key: (t) => `${t.root_service} ${t.root_operation}`,
      render: (t) =>
        h(
          "a",
          { href: traceHref(t.trace_id), class: "trace-link", "data-trace-id": t.trace_id },
          h("span", { class: "svc-dot", style: { background: serviceColor(t.root_service) }, "aria-hidden": "true" }),
          h("span", { class: "svc-name" }, t.root_service || "(unknown service)"),
          " ",
          h("span", { class: "op-name" }, t.root_operation || "(no name)"),
        ),
    },
    { label: "Duration", num: true, key: (t) => t.duration_ns, render: (t) => duration(t.duration_ns / 1e6) },
    { label: "Spans", num: true, key: (t) => t.span_count, render: (t) => count(t.span_count) },
    {
      label: "Errors",
      num: true,
      key: (t) => t.error_count,
      render: (t) => (t.error_count ? h("span", { class: "badge error" }, count(t.error_count)) : "0"),
    },
    { label: "Services", render: (t) => h("span", { class: "small muted" }, t.services.join(", ")) },
    { label: "Trace id", render: (t) => h("code", { class: "small muted" }, t.trace_id.slice(0, 16)) },
  ];
  const box = $("#results");
  if (!traces.length) {
    clear(box).append(h("div", { class: "empty" }, "No traces in this range match the search."));
    return;
  }
  sortableTable(box, columns, traces, {
    rowAttrs: (t) => ({ class: t.error_count ? "row-error" : "", "data-trace-id": t.trace_id }),
  });
}

async function load(range) {
  const mine = ++sequence;
  loadServices(range);
  const params = { start: range.start, end: range.end };
  for (const name of FIELDS) params[name] = form.elements[name].value.trim();
  for (const [key, value] of attributes) params[ATTR + key] = value;
  $("#results").setAttribute("aria-busy", "true");
  try {
    const data = await get("/api/v1/traces", params);
    if (mine !== sequence) return;
    flash("");
    $("#result-count").textContent = `${count(data.traces.length)} newest${
      data.traces.length >= Number(params.limit) ? " (limit reached)" : ""
    }`;
    drawScatter(data.traces);
    drawTable(data.traces);
  } catch (err) {
    if (mine !== sequence) return;
    const message = err instanceof ApiError ? err.message : String(err);
    flash(`Search failed: ${message}`, "error");
    $("#result-count").textContent = "";
    clear($("#results")).append(h("div", { class: "empty error-text" }, `Search failed: ${message}`));
  } finally {
    if (mine === sequence) $("#results").removeAttribute("aria-busy");
  }
}

function search() {
  writeUrl();
  load(currentRange());
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (addAttribute()) search();
});
$("#f-attr-add").addEventListener("click", () => addAttribute() && search());
attrInput.addEventListener("keydown", (event) => {
  if (event.key === "Enter") {
    event.preventDefault();
    if (addAttribute()) search();
  }
});
serviceSelect.addEventListener("change", () => {
  operationInput.value = "";
  loadOperations();
  search();
});
for (const name of ["status", "limit"]) form.elements[name].addEventListener("change", search);
window.addEventListener("popstate", () => {
  readUrl();
  load(currentRange());
});

readUrl();
bindRange(load);
