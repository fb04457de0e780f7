// One trace: a summary, the waterfall of nested spans on the trace's timeline (critical path marked,
// subtrees collapsible, keyboard-driven) and the details of the selected span.
//
// The waterfall is virtual: the tree is as tall as all its shown rows, but only the rows near its scrolled
// view (and the selected one) are in the document, each built when first needed and placed at its position. A
// trace of thousands of spans costs what one screenful costs. Collapsing a span recomputes the list of
// shown rows (a subtree is the index range [i + 1, subtreeEnd) in preorder) and places them again.
import { get, ApiError } from "olly/api.js";
import { $, h, clear, flash } from "olly/dom.js";
import { config } from "olly/config.js";
import { duration, count, time } from "olly/format.js";
import { anyValue, buildTrace, epochMs, kindName, offsetMs, serviceColor, statusName } from "olly/trace-model.js";

const traceId = config.traceId;
const waterfall = $("#waterfall");
const details = $("#span-details");
const TICKS = [0, 0.2, 0.4, 0.6, 0.8, 1];
let trace = null;
let selected = -1;

const logsHref = (params) => `/logs/?${new URLSearchParams(params)}`;
const pct = (ms) => (trace.duration > 0 ? (ms / trace.duration) * 100 : 0);

function header() {
  const root = trace.root;
  $("#trace-title").textContent = root ? `${root.service}: ${root.name}` : "Trace";
  document.title = `${root ? root.name : "Trace"} · OllyStack`;
  const start = root ? time(epochMs(trace.base)) : "–";
  clear($("#trace-head")).append(
    h(
      "dl",
      { class: "facts" },
      h("div", {}, h("dt", {}, "Duration"), h("dd", { id: "trace-duration" }, duration(trace.duration))),
      h("div", {}, h("dt", {}, "Spans"), h("dd", { id: "span-count" }, count(trace.nodes.length))),
      h(
        "div",
        {},
        h("dt", {}, "Errors"),
        h(
          "dd",
          { id: "error-count" },
          trace.errors ? h("span", { class: "badge error" }, count(trace.errors)) : h("span", { class: "badge ok" }, "0"),
        ),
      ),
      h("div", {}, h("dt", {}, "Started"), h("dd", {}, start)),
      h(
        "div",
        { class: "services-fact" },
        h("dt", {}, `Services (${trace.services.length})`),
        h("dd", { id: "trace-services" }, trace.services.map((s) => serviceChip(s))),
      ),
    ),
    h("a", { id: "trace-logs", class: "logs-link", href: logsHref({ trace_id: traceId }) }, "Logs of this trace →"),
  );
}

function serviceChip(service) {
  return h(
    "span",
    { class: "svc-chip" },
    h("span", { class: "svc-dot", style: { background: serviceColor(service) }, "aria-hidden": "true" }),
    service || "(unknown service)",
  );
}

function ruler() {
  return h(
    "div",
    { class: "wf-ruler", "aria-hidden": "true" },
    h("div", { class: "wf-name" }, "Service · operation"),
    h(
      "div",
      { class: "wf-time" },
      TICKS.map((f) =>
        h("span", { class: "tick", style: { left: `${f * 100}%` } }, duration(f * trace.duration)),
      ),
    ),
  );
}

function row(node) {
  const hasChildren = node.children.length > 0;
  const left = pct(node.start);
  const width = Math.max(pct(node.end - node.start), 0.05);
  const label = duration(node.end - node.start);
  const siblings = node.parent ? node.parent.children : trace.roots;
  const isSelected = node.index === Math.max(selected, 0);
  return h(
    "div",
    {
      class: `wf-row${node.error ? " error" : ""}${node.critical ? " critical" : ""}`,
      role: "treeitem",
      "aria-level": node.depth + 1,
      "aria-setsize": siblings.length,
      "aria-posinset": node.position,
      "aria-expanded": hasChildren ? String(!node.collapsed) : undefined,
      "aria-selected": String(node.index === selected),
      "aria-label": `${node.service} ${node.name}, ${label}${node.error ? ", error" : ""}${node.critical ? ", on the critical path" : ""}`,
      tabindex: isSelected ? "0" : "-1",
      dataset: { index: node.index, spanId: node.id, critical: node.critical ? "true" : "false" },
    },
    h(
      "div",
      { class: "wf-name", style: { paddingLeft: `${Math.min(node.depth, 40) * 14 + 4}px` } },
      hasChildren
        ? h(
            "button",
            { type: "button", class: "toggle", tabindex: "-1", "aria-label": node.collapsed ? "Expand" : "Collapse", "data-toggle": "" },
            node.collapsed ? "▸" : "▾",
          )
        : h("span", { class: "toggle-space" }),
      h("span", { class: "svc-dot", style: { background: serviceColor(node.service) }, "aria-hidden": "true" }),
      h("span", { class: "svc-name" }, node.service),
      h("span", { class: "op-name" }, node.name),
      node.error ? h("span", { class: "err-mark", title: "status ERROR" }, "!") : null,
      node.orphan ? h("span", { class: "badge small", title: "its parent span was not received" }, "orphan") : null,
      hasChildren ? h("span", { class: "child-count small muted", hidden: !node.collapsed }, `+${node.subtreeEnd - node.index - 1}`) : null,
    ),
    h(
      "div",
      { class: "wf-time" },
      h("div", { class: "bar", style: { left: `${left}%`, width: `${width}%`, background: serviceColor(node.service) } }),
      durationLabel(left, width, label),
    ),
  );
}

// Beside the bar where there is room: after it, else before it, else inside its end.
function durationLabel(left, width, label) {
  const end = left + width;
  if (end < 85) return h("span", { class: "dur", style: { left: `${end}%` } }, label);
  if (left > 15) return h("span", { class: "dur", style: { right: `${100 - left}%` } }, label);
  return h("span", { class: "dur inside", style: { right: `${100 - end}%` } }, label);
}

// --- the virtual list: `shown` holds the indices of the rows not under a collapsed span, in order ------

const OVERSCAN = 20; // rows built beyond each edge of the viewport
let tree = null;
let rowHeight = 24;
let shown = [];
const mounted = new Set(); // nodes whose row is in the document
let frame = 0;

function rowOf(node) {
  if (!node.row) node.row = row(node);
  return node.row;
}

// The rows from just above the waterfall's scrolled view to just below it, plus the selected one (it may
// hold the focus, and Tab enters the tree there), in the document in their order. Rows already there are never moved (a moved row would
// lose the focus): the others are removed, the new ones inserted between them.
function draw() {
  frame = 0;
  const nodes = trace.nodes;
  const top = tree.getBoundingClientRect().top - waterfall.getBoundingClientRect().top;
  const first = Math.max(0, Math.floor(-top / rowHeight) - OVERSCAN);
  const last = Math.min(shown.length, Math.ceil((waterfall.clientHeight - top) / rowHeight) + OVERSCAN);
  const keep = [];
  for (let pos = first; pos < last; pos++) keep.push(nodes[shown[pos]]);
  const current = nodes[Math.max(selected, 0)]; // the row Tab enters the tree at
  if (current.pos >= 0 && (current.pos < first || current.pos >= last)) {
    keep.push(current);
    keep.sort((a, b) => a.pos - b.pos);
  }
  const wanted = new Set(keep);
  for (const node of mounted) {
    if (!wanted.has(node)) {
      node.row.remove();
      mounted.delete(node);
    }
  }
  let cursor = tree.firstChild;
  for (const node of keep) {
    const el = rowOf(node);
    el.style.top = `${node.pos * rowHeight}px`;
    if (el === cursor) cursor = cursor.nextSibling;
    else {
      tree.insertBefore(el, cursor);
      mounted.add(node);
    }
  }
}

function scheduleDraw() {
  if (!frame) frame = requestAnimationFrame(draw);
}

function render() {
  tree = h("div", { class: "wf-rows", role: "tree", "aria-label": "Spans of the trace" });
  for (const node of trace.nodes) node.collapsed = false;
  clear(waterfall).append(ruler(), tree);
  rowHeight = parseFloat(getComputedStyle(tree).getPropertyValue("--wf-row-height")) || rowHeight;
  layout();
  waterfall.addEventListener("scroll", scheduleDraw, { passive: true });
  window.addEventListener("resize", scheduleDraw);
}

// Which rows are shown (those under a collapsed span are not), their positions, the tree's height.
function layout() {
  const nodes = trace.nodes;
  shown = [];
  for (const node of nodes) node.pos = -1;
  for (let i = 0; i < nodes.length; ) {
    nodes[i].pos = shown.length;
    shown.push(i);
    i = nodes[i].collapsed ? nodes[i].subtreeEnd : i + 1;
  }
  tree.style.height = `${shown.length * rowHeight}px`;
  if (selected >= 0 && nodes[selected].pos < 0) {
    let up = nodes[selected].parent;
    while (up && up.pos < 0) up = up.parent;
    const hadFocus = document.activeElement?.closest?.(".wf-row") != null;
    if (up) select(up.index, { focus: hadFocus });
  }
  draw();
}

function setCollapsed(node, collapsed) {
  if (!node.children.length || node.collapsed === collapsed) return;
  node.collapsed = collapsed;
  if (!node.row) return; // built with the state when needed
  node.row.setAttribute("aria-expanded", collapsed ? "false" : "true");
  const button = node.row.querySelector("[data-toggle]");
  button.textContent = collapsed ? "▸" : "▾";
  button.setAttribute("aria-label", collapsed ? "Expand" : "Collapse");
  node.row.querySelector(".child-count").hidden = !collapsed;
}

function select(index, { focus = true, open = false } = {}) {
  const nodes = trace.nodes;
  if (index < 0 || index >= nodes.length) return;
  const previous = nodes[Math.max(selected, 0)];
  if (previous.row) {
    previous.row.setAttribute("aria-selected", "false");
    previous.row.tabIndex = -1;
  }
  selected = index;
  const node = nodes[index];
  const target = rowOf(node);
  target.setAttribute("aria-selected", "true");
  target.tabIndex = 0;
  draw(); // the selected row stays in the document
  if (focus) {
    target.focus({ preventScroll: true });
    target.scrollIntoView({ block: "nearest" });
    draw();
  }
  if (open) showDetails(node);
}

const nextVisible = (index) => shown[Math.min(trace.nodes[index].pos + 1, shown.length - 1)];
const previousVisible = (index) => shown[Math.max(trace.nodes[index].pos - 1, 0)];
const lastVisible = () => shown[shown.length - 1];

function onKey(event) {
  const rowEl = event.target.closest(".wf-row");
  if (!rowEl) return;
  const index = Number(rowEl.dataset.index);
  const node = trace.nodes[index];
  let handled = true;
  switch (event.key) {
    case "ArrowDown":
      select(nextVisible(index));
      break;
    case "ArrowUp":
      select(previousVisible(index));
      break;
    case "ArrowLeft":
      if (node.children.length && !node.collapsed) {
        setCollapsed(node, true);
        layout();
      } else if (node.parent) select(node.parent.index);
      break;
    case "ArrowRight":
      if (node.collapsed) {
        setCollapsed(node, false);
        layout();
      } else if (node.children.length) select(index + 1);
      break;
    case "Home":
      select(0);
      break;
    case "End":
      select(lastVisible());
      break;
    case "Enter":
    case " ":
      select(index, { open: true });
      break;
    default:
      handled = false;
  }
  if (handled) event.preventDefault();
}

function onClick(event) {
  const rowEl = event.target.closest(".wf-row");
  if (!rowEl) return;
  const node = trace.nodes[Number(rowEl.dataset.index)];
  if (event.target.closest("[data-toggle]")) {
    setCollapsed(node, !node.collapsed);
    layout();
    select(node.index);
    return;
  }
  select(node.index, { open: true });
}

function attributeTable(attributes, empty) {
  if (!attributes || !attributes.length) return h("p", { class: "muted small" }, empty);
  return h(
    "table",
    { class: "data kv" },
    h(
      "tbody",
      {},
      attributes.map((a) => h("tr", {}, h("th", { scope: "row" }, h("code", {}, a.key)), h("td", {}, h("code", {}, anyValue(a.value))))),
    ),
  );
}

// The span in full: already there when the whole trace was read, else fetched once and kept.
async function showDetails(node) {
  if (!("attributes" in node.span) && config.spanUrlPrefix) {
    clear(details).append(h("p", { class: "muted" }, `Loading ${node.name}…`));
    try {
      const full = await get(`${config.spanUrlPrefix}${node.id}`);
      node.span = { ...full, status: full.status || node.span.status };
    } catch (err) {
      flash(`The span could not be loaded: ${err.message}`, "error");
      return;
    }
    if (trace.nodes[selected] !== node) return; // another span was opened meanwhile
  }
  drawDetails(node);
}

function drawDetails(node) {
  const span = node.span;
  const status = statusName(span.status?.code);
  const fact = (label, value) => h("div", {}, h("dt", {}, label), h("dd", {}, value));
  const events = span.events || [];
  const links = span.links || [];
  clear(details).append(
    h(
      "div",
      { class: "details-head" },
      h("h2", { id: "details-title" }, node.name || "(no name)"),
      h("button", { type: "button", class: "link-button", id: "details-close", onclick: closeDetails }, "Close"),
    ),
    h(
      "dl",
      { class: "facts compact" },
      fact("Service", serviceChip(node.service)),
      fact("Kind", kindName(span.kind)),
      fact(
        "Status",
        h(
          "span",
          {},
          h("span", { class: `badge ${status === "error" ? "error" : status === "ok" ? "ok" : ""}` }, status),
          span.status?.message ? ` ${span.status.message}` : "",
        ),
      ),
      fact("Duration", duration(node.end - node.start)),
      fact("Start", h("span", {}, `+${duration(node.start)} `, h("span", { class: "muted small" }, time(epochMs(span.startTimeUnixNano))))),
      fact("Critical path", node.critical ? "yes" : "no"),
      fact("Span id", h("code", {}, span.spanId)),
      fact("Parent id", span.parentSpanId ? h("code", {}, span.parentSpanId) : h("span", { class: "muted" }, "none (root)")),
      fact("Trace id", h("code", {}, span.traceId)),
      fact("Scope", `${span.scope?.name || "–"}${span.scope?.version ? ` ${span.scope.version}` : ""}`),
    ),
    h(
      "p",
      {},
      h(
        "a",
        { class: "span-logs", href: logsHref({ trace_id: traceId, service: node.service }) },
        `Logs of ${node.service || "this service"} in this trace →`,
      ),
    ),
    h("h3", {}, `Attributes (${(span.attributes || []).length})`),
    attributeTable(span.attributes, "No attributes."),
    h("h3", {}, `Events (${events.length})`),
    events.length
      ? h(
          "ol",
          { class: "events" },
          events.map((e) =>
            h(
              "li",
              { class: "event" },
              h(
                "div",
                { class: "event-head" },
                h("strong", { class: "event-name" }, e.name),
                " ",
                h("span", { class: "muted small" }, `+${duration(offsetMs(e.timeUnixNano, trace.base))} · ${time(epochMs(e.timeUnixNano))}`),
              ),
              e.attributes?.length ? attributeTable(e.attributes, "") : null,
            ),
          ),
        )
      : h("p", { class: "muted small" }, "No events."),
    h("h3", {}, `Links (${links.length})`),
    links.length
      ? h(
          "ul",
          { class: "links" },
          links.map((l) =>
            h(
              "li",
              {},
              h("a", { href: `/traces/${encodeURIComponent(l.traceId)}/` }, h("code", {}, `${l.traceId.slice(0, 16)}…`)),
              " span ",
              h("code", {}, l.spanId),
              l.attributes?.length ? attributeTable(l.attributes, "") : null,
            ),
          ),
        )
      : h("p", { class: "muted small" }, "No links."),
    h("h3", {}, "Resource"),
    attributeTable(span.resource?.attributes, "No resource attributes."),
  );
  details.classList.add("open");
}

function closeDetails() {
  clear(details).append(h("p", { class: "muted" }, "Select a span (click it, or Enter on it) to see its details."));
  details.classList.remove("open");
  if (selected >= 0) trace.nodes[selected].row.focus();
}

function rendered() {
  requestAnimationFrame(() => {
    performance.mark("olly:trace-rendered");
    document.body.dataset.rendered = "trace";
  });
}

async function main() {
  let data;
  try {
    // The waterfall endpoint carries only what places the spans; a span's details are read when opened.
    data = await get(config.waterfallUrl);
  } catch (err) {
    const message = err instanceof ApiError ? err.message : String(err);
    const missing = err instanceof ApiError && err.status === 404;
    clear($("#trace-head")).append(
      h(
        "div",
        { class: "message error", role: "alert", id: "trace-missing" },
        missing ? `Trace not found: ${message}.` : `The trace could not be loaded: ${message}`,
        " ",
        h("a", { href: "/traces/" }, "Search traces"),
      ),
    );
    $(".trace-body").classList.add("hidden");
    document.body.dataset.rendered = missing ? "missing" : "failed";
    return;
  }
  trace = buildTrace(data.spans);
  header();
  if (data.truncated) {
    flash(`This trace has more spans than can be shown; the first ${count(data.spans.length)} by start time are.`);
  }
  render();
  waterfall.addEventListener("keydown", onKey);
  waterfall.addEventListener("click", onClick);
  details.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeDetails();
  });
  $("#expand-all").addEventListener("click", () => {
    trace.nodes.forEach((n) => setCollapsed(n, false));
    layout();
  });
  $("#collapse-all").addEventListener("click", () => {
    trace.nodes.forEach((n) => setCollapsed(n, true));
    layout();
  });
  rendered();
}

main().catch((err) => flash(`The trace page failed: ${err.message}`, "error"));
