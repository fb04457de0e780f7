// Service overview: every service with request rate, error rate and p95 latency over the range (from
// /api/v1/services) and a small chart of each figure over the range (/api/v1/services/series). Rows link
// to the service page; the search box filters by name; sorting and the filter survive auto-refresh.
import { get, ApiError } from "olly/api.js";
import { $, h, flash } from "olly/dom.js";
import { rate, percent, durationNs } from "olly/format.js";
import { bindRange } from "olly/range.js";
import { PALETTE, sparkline } from "olly/charts.js";
import { sortableTable } from "olly/table.js";

const container = $("#services");
const search = $("#service-search");
const countLabel = $("#service-count");
let rows = [];
let plots = [];
let table = null;
let sequence = 0;

// The page's range and refresh travel to the service page.
function serviceHref(name) {
  const params = new URLSearchParams(window.location.search);
  const keep = new URLSearchParams();
  for (const key of ["range", "refresh"]) if (params.get(key)) keep.set(key, params.get(key));
  const query = keep.toString();
  return `/services/${encodeURIComponent(name)}/${query ? `?${query}` : ""}`;
}

function spark(xs, ys, color, label) {
  const el = h("span", { class: "sparkline", role: "img", "aria-label": label });
  if (xs.length && ys.some((v) => v !== null && v !== undefined && v !== 0)) plots.push(sparkline(el, xs, ys, { color, width: 110 }));
  return el;
}

function figure(sparkEl, text, extraClass = "") {
  return h("span", { class: "figure-cell" }, sparkEl, h("span", { class: `value ${extraClass}` }, text));
}

const columns = [
  {
    label: "Service",
    key: (r) => r.name,
    render: (r) => h("a", { href: serviceHref(r.name), class: "service-link" }, r.name),
  },
  {
    label: "Requests/s",
    num: true,
    key: (r) => r.rate,
    render: (r) => figure(r.sparks.rate, rate(r.rate)),
  },
  {
    label: "Error rate",
    num: true,
    key: (r) => r.errorRate,
    render: (r) => figure(r.sparks.errors, percent(r.errorRate), r.errorRate > 0 ? "error-text" : ""),
  },
  {
    label: "p95 latency",
    num: true,
    key: (r) => r.p95,
    render: (r) => figure(r.sparks.p95, r.requests ? durationNs(r.p95) : "–"),
  },
];

// Which column the table is sorted by (kept across a refresh or a new filter).
function sortState() {
  if (!table) return { sortBy: 0, descending: false };
  const headers = [...table.querySelectorAll("thead th")];
  const index = headers.findIndex((th) => th.getAttribute("aria-sort") !== "none");
  if (index < 0) return { sortBy: 0, descending: false };
  return { sortBy: index, descending: headers[index].getAttribute("aria-sort") === "descending" };
}

function draw() {
  const state = sortState();
  const query = search.value.trim().toLowerCase();
  const shown = query ? rows.filter((r) => r.name.toLowerCase().includes(query)) : rows;
  countLabel.textContent = rows.length ? `(${shown.length === rows.length ? rows.length : `${shown.length} of ${rows.length}`})` : "";
  if (!rows.length) {
    table = null;
    container.replaceChildren(h("div", { class: "empty" }, "No services in this range."));
    return;
  }
  if (!shown.length) {
    container.replaceChildren(h("div", { class: "empty" }, `No service matches “${search.value.trim()}”.`));
    return;
  }
  table = sortableTable(container, columns, shown, { ...state, rowAttrs: (r) => ({ dataset: { service: r.name } }) });
  table.classList.add("services-table");
}

function build(services, series) {
  plots.forEach((p) => p.destroy());
  plots = [];
  const xs = series.times;
  const byName = new Map(series.services.map((s) => [s.service, s]));
  const msOrNull = (v) => (v === null || v === undefined ? null : v / 1e6);
  rows = services.map((s) => {
    const points = byName.get(s.service);
    return {
      name: s.service,
      requests: s.requests,
      rate: s.request_rate,
      errorRate: s.error_rate,
      p95: s.duration_ns.p95,
      sparks: {
        rate: spark(points ? xs : [], points?.request_rate || [], PALETTE[0], `Requests per second of ${s.service} over the range`),
        errors: spark(points ? xs : [], points?.error_rate || [], PALETTE[1], `Error rate of ${s.service} over the range`),
        p95: spark(points ? xs : [], (points?.duration_ns.p95 || []).map(msOrNull), PALETTE[3], `p95 latency of ${s.service} over the range`),
      },
    };
  });
  draw();
}

async function load({ start, end }) {
  const mine = ++sequence;
  try {
    const [list, series] = await Promise.all([
      get("/api/v1/services", { start, end }),
      get("/api/v1/services/series", { start, end }),
    ]);
    if (mine !== sequence) return;
    flash("");
    build(list.services, series);
  } catch (err) {
    if (mine !== sequence) return;
    flash(err instanceof ApiError ? err.message : `Could not load the services: ${err.message}`, "error");
    if (!rows.length) container.replaceChildren(h("div", { class: "empty" }, "Services could not be loaded."));
  }
}

search.addEventListener("input", () => {
  const u = new URL(window.location.href);
  if (search.value.trim()) u.searchParams.set("q", search.value.trim());
  else u.searchParams.delete("q");
  window.history.replaceState(null, "", u);
  draw();
});
const initial = new URLSearchParams(window.location.search).get("q");
if (initial) search.value = initial;
bindRange(load);
