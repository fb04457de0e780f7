// The service map: services as nodes (size: request rate, red ring: high error rate), calls as edges (width:
// call rate, colour: error rate), laid out left to right by call depth. Tables below carry the same facts for
// the keyboard and screen readers. window.ollyServiceMap is the Cytoscape instance (tests read it).
import cytoscape from "cytoscape";
import { get } from "olly/api.js";
import { config } from "olly/config.js";
import { $, h, flash } from "olly/dom.js";
import { duration, percent, rate } from "olly/format.js";
import { bindRange } from "olly/range.js";
import { sortableTable } from "olly/table.js";

const HIGH = config.highErrorRate ?? 0.05;
const GREEN_HUE = 140;

const serviceUrl = (name) => `/services/${encodeURIComponent(name)}/`;

// Green at no errors, red from twice the "high" error rate on.
export function errorColor(errorRate) {
  const t = Math.max(0, Math.min(1, (errorRate || 0) / (2 * HIGH)));
  return `hsl(${Math.round(GREEN_HUE * (1 - t))}, ${Math.round(60 + 10 * t)}%, ${Math.round(38 + 8 * t)}%)`;
}

// Services and calls of one range, from the topology's edges and the per-service RED figures.
function model(topology, services, seconds) {
  const red = new Map(services.map((s) => [s.service, s]));
  const incoming = new Map();
  const outgoing = new Map();
  const nodes = new Map();
  const node = (name, instrumented) => {
    if (!nodes.has(name)) nodes.set(name, { name, instrumented });
    const n = nodes.get(name);
    n.instrumented = n.instrumented || instrumented;
    return n;
  };
  for (const t of topology.nodes) node(t.service, t.instrumented);
  for (const s of services) if (s.requests > 0) node(s.service, true);
  const edges = topology.edges.map((e) => {
    node(e.caller, true);
    node(e.callee, e.instrumented);
    const add = (map, key, value) => map.set(key, (map.get(key) || 0) + value);
    add(incoming, e.callee, e.calls);
    add(outgoing, e.caller, e.calls);
    incoming.set(`${e.callee}#errors`, (incoming.get(`${e.callee}#errors`) || 0) + e.errors);
    return {
      id: `${e.caller}→${e.callee}`,
      caller: e.caller,
      callee: e.callee,
      instrumented: e.instrumented,
      rate: seconds > 0 ? e.calls / seconds : 0,
      errorRate: e.error_rate,
      p95: e.duration_ns.p95 / 1e6,
      calls: e.calls,
    };
  });
  for (const n of nodes.values()) {
    const r = red.get(n.name);
    if (r && r.requests > 0) {
      n.rate = r.request_rate;
      n.errorRate = r.error_rate;
      n.p95 = r.duration_ns.p95 / 1e6;
    } else {
      const calls = incoming.get(n.name) || 0;
      n.rate = seconds > 0 ? calls / seconds : 0;
      n.errorRate = calls ? (incoming.get(`${n.name}#errors`) || 0) / calls : 0;
      n.p95 = null;
    }
    n.callers = edges.filter((e) => e.callee === n.name).length;
    n.callees = edges.filter((e) => e.caller === n.name).length;
  }
  return { nodes: [...nodes.values()], edges };
}

function elements({ nodes, edges }) {
  const maxRate = Math.max(...nodes.map((n) => n.rate), 1e-9);
  const maxEdge = Math.max(...edges.map((e) => e.rate), 1e-9);
  return [
    ...nodes.map((n) => ({
      group: "nodes",
      data: {
        id: n.name,
        label: `${n.name}\n${rate(n.rate)} · ${percent(n.errorRate)} err`,
        size: Math.round(30 + 50 * Math.sqrt(n.rate / maxRate)),
        rate: n.rate,
        errorRate: n.errorRate,
        instrumented: n.instrumented,
      },
      classes: [n.errorRate >= HIGH ? "high-errors" : "", n.instrumented ? "" : "external"].join(" ").trim(),
    })),
    ...edges.map((e) => ({
      group: "edges",
      data: {
        id: e.id,
        source: e.caller,
        target: e.callee,
        label: `${rate(e.rate)} · ${percent(e.errorRate)} err · p95 ${duration(e.p95)}`,
        width: 1.5 + 4.5 * Math.sqrt(e.rate / maxEdge),
        color: errorColor(e.errorRate),
        rate: e.rate,
        errorRate: e.errorRate,
      },
      classes: e.instrumented ? "" : "external",
    })),
  ];
}

const STYLE = [
  {
    selector: "node",
    style: {
      width: "data(size)",
      height: "data(size)",
      "background-color": "#dbe7ff",
      "border-width": 2,
      "border-color": "#2563eb",
      label: "data(label)",
      "text-wrap": "wrap",
      "text-valign": "bottom",
      "text-margin-y": 6,
      "font-size": 12,
      "font-family": "system-ui, sans-serif",
      color: "#1d232b",
      "text-background-color": "#fff",
      "text-background-opacity": 0.85,
      "text-background-padding": 2,
    },
  },
  { selector: "node.external", style: { shape: "round-rectangle", "background-color": "#f1f3f6", "border-style": "dashed", "border-color": "#5b6573" } },
  { selector: "node.high-errors", style: { "border-width": 5, "border-color": "#c62828", "background-color": "#fdecec" } },
  { selector: "node:selected", style: { "overlay-color": "#f59e0b", "overlay-opacity": 0.25, "overlay-padding": 6 } },
  {
    selector: "edge",
    style: {
      width: "data(width)",
      "line-color": "data(color)",
      "target-arrow-color": "data(color)",
      "target-arrow-shape": "triangle",
      "arrow-scale": 1.1,
      "curve-style": "bezier",
      "font-size": 10,
      "text-rotation": "autorotate",
      "text-background-color": "#fff",
      "text-background-opacity": 0.9,
      "text-background-padding": 2,
    },
  },
  { selector: "edge.external", style: { "line-style": "dashed" } },
  { selector: "edge.hover, edge:selected", style: { label: "data(label)", "z-index": 10 } },
];

function hasCycle(edges) {
  const next = new Map();
  edges.forEach((e) => next.set(e.caller, [...(next.get(e.caller) || []), e.callee]));
  const state = new Map();
  const visit = (n) => {
    if (state.get(n) === 1) return true;
    if (state.get(n) === 2) return false;
    state.set(n, 1);
    const found = (next.get(n) || []).some(visit);
    state.set(n, 2);
    return found;
  };
  return [...next.keys()].some(visit);
}

// Small call trees read best left to right by call depth; graphs with cycles, and graphs too wide for one
// column per depth, get a force-directed layout that uses the panel's whole area.
const TREE_LIMIT = 24;
function layoutOptions(graph) {
  const called = new Set(graph.edges.map((e) => e.callee));
  const roots = graph.nodes.filter((n) => !called.has(n.name)).map((n) => n.name);
  if (graph.nodes.length > TREE_LIMIT || hasCycle(graph.edges)) {
    return {
      name: "cose",
      animate: false,
      randomize: false,
      nodeRepulsion: () => 40000,
      idealEdgeLength: () => 90,
      nodeOverlap: 40,
      gravity: 0.6,
      numIter: 2500,
      padding: 30,
    };
  }
  return {
    name: "breadthfirst",
    directed: true,
    roots: roots.length ? roots : undefined,
    spacingFactor: 1.3,
    padding: 40,
    animate: false,
    transform: (n, pos) => ({ x: pos.y * 1.6, y: pos.x }),
  };
}

let cy = null;
let graph = null;
let shape = "";

function draw(next) {
  graph = next;
  const signature = JSON.stringify([next.nodes.map((n) => n.name).sort(), next.edges.map((e) => e.id).sort()]);
  const els = elements(next);
  $("#map-empty").classList.toggle("hidden", next.nodes.length > 0);
  $("#map").classList.toggle("hidden", next.nodes.length === 0);
  if (cy && signature === shape) {
    // Same services and calls: refresh the figures in place, keep positions, zoom and selection.
    cy.batch(() => {
      for (const el of els) {
        const existing = cy.getElementById(el.data.id);
        existing.data(el.data);
        existing.classes(el.classes);
      }
    });
    return;
  }
  shape = signature;
  if (!cy) {
    cy = cytoscape({ container: $("#map"), style: STYLE, wheelSensitivity: 0.3, minZoom: 0.1, maxZoom: 2.5 });
    cy.on("tap", "node", (event) => {
      const data = event.target.data();
      if (data.instrumented) window.location.assign(serviceUrl(data.id));
      else flash(`${data.id} sends no telemetry of its own: it is known from its callers' client spans.`);
    });
    cy.on("mouseover", "edge", (event) => event.target.addClass("hover"));
    cy.on("mouseout", "edge", (event) => event.target.removeClass("hover"));
    cy.on("mouseover", "node", (event) => {
      if (event.target.data("instrumented")) $("#map").style.cursor = "pointer";
    });
    cy.on("mouseout", "node", () => ($("#map").style.cursor = ""));
    window.ollyServiceMap = cy;
  }
  cy.elements().remove();
  $("#map").classList.toggle("large", next.nodes.length > TREE_LIMIT);
  cy.resize();
  cy.add(els);
  if (next.nodes.length) cy.layout(layoutOptions(next)).run();
  cy.resize();
  cy.fit(undefined, 40);
}

function tables({ nodes, edges }) {
  const link = (name) => h("a", { href: serviceUrl(name) }, name);
  sortableTable(
    $("#service-table"),
    [
      { label: "Service", key: (n) => n.name, render: (n) => (n.instrumented ? link(n.name) : h("span", { title: "not instrumented" }, `${n.name} (external)`)) },
      { label: "Requests", key: (n) => n.rate, render: (n) => rate(n.rate), num: true },
      {
        label: "Errors",
        key: (n) => n.errorRate,
        render: (n) => (n.errorRate >= HIGH ? h("span", { class: "badge error" }, percent(n.errorRate)) : percent(n.errorRate)),
        num: true,
      },
      { label: "p95", key: (n) => n.p95 ?? -1, render: (n) => duration(n.p95), num: true },
      { label: "Callers", key: (n) => n.callers, num: true },
      { label: "Calls to", key: (n) => n.callees, num: true },
    ],
    nodes,
    { sortBy: 1, descending: true },
  );
  sortableTable(
    $("#edge-table"),
    [
      {
        label: "Caller → callee",
        key: (e) => e.id,
        render: (e) => [h("span", { class: "edge-swatch", style: { background: errorColor(e.errorRate) } }), link(e.caller), " → ", e.instrumented ? link(e.callee) : e.callee],
      },
      { label: "Calls", key: (e) => e.rate, render: (e) => rate(e.rate), num: true },
      {
        label: "Errors",
        key: (e) => e.errorRate,
        render: (e) => (e.errorRate >= HIGH ? h("span", { class: "badge error" }, percent(e.errorRate)) : percent(e.errorRate)),
        num: true,
      },
      { label: "p95", key: (e) => e.p95, render: (e) => duration(e.p95), num: true },
    ],
    edges,
    { sortBy: 1, descending: true, rowAttrs: (e) => ({ dataset: { edge: e.id } }) },
  );
}

let sequence = 0;
async function load({ start, end }) {
  const mine = ++sequence;
  try {
    const [topology, services] = await Promise.all([get("/api/v1/topology", { start, end }), get("/api/v1/services", { start, end })]);
    if (mine !== sequence) return;
    const next = model(topology, services.services, end - start);
    draw(next);
    tables(next);
    document.body.dataset.loaded = "true";
  } catch (err) {
    flash(err.message, "error");
  }
}

$("#high-rate").textContent = percent(HIGH);
$("#fit").addEventListener("click", () => cy && cy.fit(undefined, 40));
$("#relayout").addEventListener("click", () => {
  if (cy && graph && graph.nodes.length) {
    cy.layout(layoutOptions(graph)).run();
    cy.fit(undefined, 40);
  }
});
bindRange(load);
