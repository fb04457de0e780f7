// One service: RED over time in total and for its busiest operations (/api/v1/services/<name>/series),
// its operations with their figures (…/operations), its most frequent errors (/api/v1/errors) and its
// slowest requests (…/slowest), each linking to its trace. Every part loads on its own: one failing
// request leaves the others on the page and says what went wrong.
import { get, ApiError } from "olly/api.js";
import { $, h, flash } from "olly/dom.js";
import { rate, percent, duration, durationNs, count, time } from "olly/format.js";
import { bindRange } from "olly/range.js";
import { PALETTE, timeSeries } from "olly/charts.js";
import { sortableTable } from "olly/table.js";
import { config } from "olly/config.js";

const service = config.service;
const base = `/api/v1/services/${encodeURIComponent(service)}`;
const plots = new Map();
let sequence = 0;

const ms = (ns) => (ns === null || ns === undefined ? null : ns / 1e6);
const traceHref = (id) => `/traces/${encodeURIComponent(id)}/`;

function rangeQuery(extra = {}) {
  const params = new URLSearchParams(window.location.search);
  const keep = new URLSearchParams(extra);
  if (params.get("range")) keep.set("range", params.get("range"));
  return keep.toString();
}

function chart(id, xs, series, format) {
  plots.get(id)?.destroy();
  const el = $(`#${id}`);
  if (!series.length || !xs.length) {
    plots.delete(id);
    el.replaceChildren(h("div", { class: "empty" }, "No requests in this range."));
    return;
  }
  plots.set(id, timeSeries(el, xs, series, { height: 200, format, yMin: 0 }));
}

function empty(el, text) {
  el.replaceChildren(h("div", { class: "empty" }, text));
}

function drawSeries(body) {
  const xs = body.times;
  const total = body.total;
  const hasRequests = total.requests.some((v) => v > 0);
  const pick = (series) => (hasRequests ? series : []);
  chart("chart-rate", xs, pick([{ label: "requests/s", values: total.request_rate }]), rate);
  chart("chart-errors", xs, pick([{ label: "error rate", values: total.error_rate, color: PALETTE[1] }]), percent);
  chart(
    "chart-latency",
    xs,
    pick([
      { label: "p50", values: total.duration_ns.p50.map(ms), color: PALETTE[2] },
      { label: "p95", values: total.duration_ns.p95.map(ms), color: PALETTE[0] },
      { label: "p99", values: total.duration_ns.p99.map(ms), color: PALETTE[3] },
    ]),
    duration,
  );
  const ops = body.operations;
  chart("chart-op-rate", xs, ops.map((op) => ({ label: op.operation, values: op.request_rate })), rate);
  chart("chart-op-latency", xs, ops.map((op) => ({ label: op.operation, values: op.duration_ns.p95.map(ms) })), duration);
}

function drawFigures(overview) {
  const mine = overview.services.find((s) => s.service === service);
  $("#rate-figure").textContent = mine ? rate(mine.request_rate) : "";
  $("#errors-figure").textContent = mine ? percent(mine.error_rate) : "";
  $("#latency-figure").textContent = mine && mine.requests ? `p95 ${durationNs(mine.duration_ns.p95)}` : "";
  $("#errors-figure").classList.toggle("error-text", Boolean(mine && mine.error_rate > 0));
}

function drawOperations(body) {
  const el = $("#operations");
  if (!body.operations.length) return empty(el, "No operations in this range.");
  const operationHref = (name) => `/traces/?${rangeQuery({ service, operation: name })}`;
  sortableTable(
    el,
    [
      {
        label: "Operation",
        key: (op) => op.operation,
        render: (op) => h("a", { href: operationHref(op.operation), title: `Traces of ${op.operation}` }, op.operation),
      },
      { label: "Requests", num: true, key: (op) => op.requests, render: (op) => count(Math.round(op.requests)) },
      { label: "Requests/s", num: true, key: (op) => op.request_rate, render: (op) => rate(op.request_rate) },
      {
        label: "Error rate",
        num: true,
        key: (op) => op.error_rate,
        render: (op) => h("span", { class: op.error_rate > 0 ? "error-text" : "" }, percent(op.error_rate)),
      },
      { label: "p50", num: true, key: (op) => op.duration_ns.p50, render: (op) => durationNs(op.duration_ns.p50) },
      { label: "p95", num: true, key: (op) => op.duration_ns.p95, render: (op) => durationNs(op.duration_ns.p95) },
      { label: "p99", num: true, key: (op) => op.duration_ns.p99, render: (op) => durationNs(op.duration_ns.p99) },
    ],
    body.operations,
    { sortBy: 1, descending: true, rowAttrs: (op) => ({ dataset: { operation: op.operation } }) },
  );
}

function drawErrors(body) {
  const el = $("#top-errors");
  if (!body.errors.length) return empty(el, "No errors in this range.");
  sortableTable(
    el,
    [
      { label: "Count", num: true, key: (e) => e.count, render: (e) => count(Math.round(e.count)) },
      {
        label: "Error",
        key: (e) => e.pattern,
        render: (e) =>
          h(
            "span",
            { class: "error-message", title: e.example_message },
            e.exception_type ? h("strong", {}, `${e.exception_type} `) : null,
            e.pattern || e.example_message || "(no message)",
          ),
      },
      { label: "Last seen", key: (e) => Number(e.last_seen_unix_nano.slice(0, -6)), render: (e) => time(Number(e.last_seen_unix_nano.slice(0, -6)), false) },
      {
        label: "Example",
        render: (e) => (e.example_trace_id && !/^0+$/.test(e.example_trace_id) ? h("a", { href: traceHref(e.example_trace_id), class: "mono" }, e.example_trace_id.slice(0, 8)) : "–"),
      },
    ],
    body.errors,
    { sortBy: 0, descending: true },
  );
}

function drawSlowest(body) {
  const el = $("#slowest");
  if (!body.requests.length) return empty(el, "No traces in this range.");
  sortableTable(
    el,
    [
      {
        label: "Trace",
        key: (r) => r.trace_id,
        render: (r) => h("a", { href: traceHref(r.trace_id), class: "mono trace-link", title: r.trace_id }, r.trace_id.slice(0, 12)),
      },
      { label: "Operation", key: (r) => r.operation },
      { label: "Duration", num: true, key: (r) => r.duration_ns, render: (r) => durationNs(r.duration_ns) },
      {
        label: "Started",
        key: (r) => Number(r.start_time_unix_nano.slice(0, -6)),
        render: (r) => time(Number(r.start_time_unix_nano.slice(0, -6))),
      },
      {
        label: "Status",
        key: (r) => (r.error ? 1 : 0),
        render: (r) => h("span", { class: `badge ${r.error ? "error" : "ok"}` }, r.error ? "error" : "ok"),
      },
    ],
    body.requests,
    { sortBy: 2, descending: true },
  );
}

const parts = [
  ["series", (range) => get(`${base}/series`, range), drawSeries, "#chart-rate"],
  ["figures", (range) => get("/api/v1/services", { ...range, service }), drawFigures, null],
  ["operations", (range) => get(`${base}/operations`, range), drawOperations, "#operations"],
  ["errors", (range) => get("/api/v1/errors", { ...range, service, limit: 10 }), drawErrors, "#top-errors"],
  ["slowest", (range) => get(`${base}/slowest`, { ...range, limit: 10 }), drawSlowest, "#slowest"],
];

async function load({ start, end }) {
  const mine = ++sequence;
  $("#logs-link").href = `/logs/?${rangeQuery({ service })}`;
  $("#traces-link").href = `/traces/?${rangeQuery({ service })}`;
  const results = await Promise.allSettled(parts.map(([, fetch]) => fetch({ start, end })));
  if (mine !== sequence) return;
  const failures = [];
  results.forEach((result, i) => {
    const [name, , drawPart, target] = parts[i];
    if (result.status === "fulfilled") {
      drawPart(result.value);
      return;
    }
    const err = result.reason;
    failures.push(`${name}: ${err instanceof ApiError ? err.message : err.message || err}`);
    if (target && $(target).querySelector(".empty")) empty($(target), "Could not be loaded.");
  });
  flash(failures.length ? `Some parts could not be loaded — ${failures.join("; ")}` : "", failures.length ? "error" : "info");
}

bindRange(load);
