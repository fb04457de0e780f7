// One trace as a tree: spans (OTLP/JSON from /api/v1/traces/<id>) nested under their parents, in the
// order the waterfall shows them, with times in milliseconds from the trace's start and the critical path.
import { PALETTE } from "olly/palette.js";

const KINDS = ["unspecified", "internal", "server", "client", "producer", "consumer"];
const STATUSES = ["unset", "ok", "error"];
const STATUS_ERROR = 2;
// Red means "error" on these pages, so services never get it.
const SERVICE_COLOURS = PALETTE.filter((c) => c !== "#dc2626");

export function serviceColor(service) {
  let hash = 0;
  for (const ch of String(service || "")) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return SERVICE_COLOURS[hash % SERVICE_COLOURS.length];
}

export function kindName(kind) {
  if (typeof kind === "number") return KINDS[kind] || String(kind);
  return String(kind || "unspecified").replace(/^SPAN_KIND_/, "").toLowerCase();
}

export function statusName(code) {
  if (typeof code === "number") return STATUSES[code] || String(code);
  return String(code || "unset").replace(/^STATUS_CODE_/, "").toLowerCase();
}

const isError = (span) => span.status?.code === STATUS_ERROR || span.status?.code === "STATUS_CODE_ERROR";

// An OTLP/JSON AnyValue as text.
export function anyValue(value) {
  if (!value || typeof value !== "object") return "";
  if ("stringValue" in value) return value.stringValue;
  if ("intValue" in value) return String(value.intValue);
  if ("doubleValue" in value) return String(value.doubleValue);
  if ("boolValue" in value) return String(value.boolValue);
  if ("bytesValue" in value) return `base64:${value.bytesValue}`;
  if ("arrayValue" in value) return `[${(value.arrayValue.values || []).map(anyValue).join(", ")}]`;
  if ("kvlistValue" in value) {
    return `{${(value.kvlistValue.values || []).map((kv) => `${kv.key}: ${anyValue(kv.value)}`).join(", ")}}`;
  }
  return "";
}

// Nanosecond decimal strings are beyond a JavaScript number's exact range: offsets are taken in BigInt.
export const offsetMs = (ns, base) => Number(BigInt(ns) - base) / 1e6;
export const epochMs = (ns) => Number(BigInt(ns) / 1_000_000n);

// Spans → {nodes (preorder: parents before their children, siblings by start), base (BigInt ns), duration
// (ms), root (of the critical path), roots (the nodes without a parent, in order), services, errors}. Each
// node: {span, id, name, service, start, end (ms from base), error, depth, parent, children, index,
// subtreeEnd (index after its last descendant), position (1-based, among its siblings), orphan, critical}.
export function buildTrace(spans) {
  let base = null;
  for (const span of spans) {
    const start = BigInt(span.startTimeUnixNano);
    if (base === null || start < base) base = start;
  }
  base = base ?? 0n;
  const byId = new Map();
  const all = spans.map((span) => {
    const start = offsetMs(span.startTimeUnixNano, base);
    const node = {
      span,
      id: span.spanId,
      name: span.name,
      service: span.serviceName || "",
      start,
      end: Math.max(start, offsetMs(span.endTimeUnixNano, base)),
      error: isError(span),
      depth: 0,
      parent: null,
      children: [],
      index: -1,
      subtreeEnd: -1,
      orphan: false,
      critical: false,
    };
    if (!byId.has(node.id)) byId.set(node.id, node);
    return node;
  });
  const roots = [];
  for (const node of all) {
    const parent = node.span.parentSpanId ? byId.get(node.span.parentSpanId) : undefined;
    if (parent && parent !== node) {
      node.parent = parent;
      parent.children.push(node);
    } else {
      node.orphan = Boolean(node.span.parentSpanId); // its parent was not stored (yet)
      roots.push(node);
    }
  }
  const byStart = (a, b) => a.start - b.start || a.end - b.end || a.name.localeCompare(b.name);
  const nodes = [];
  // Preorder without recursion (a deep trace must not exhaust the stack); a parent loop in bad data leaves
  // its spans unreached, and they are shown as roots after the others.
  const walk = (top) => {
    const stack = [top];
    while (stack.length) {
      const node = stack.pop();
      node.index = nodes.length;
      node.depth = node.parent ? node.parent.depth + 1 : 0;
      nodes.push(node);
      node.children = node.children.filter((child) => child.index < 0).sort(byStart);
      for (let i = node.children.length - 1; i >= 0; i--) stack.push(node.children[i]);
    }
  };
  roots.sort(byStart).forEach(walk);
  for (const node of all) {
    if (node.index < 0) {
      node.parent = null;
      walk(node);
    }
  }
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i];
    node.subtreeEnd = node.children.length ? node.children[node.children.length - 1].subtreeEnd : i + 1;
    node.children.forEach((child, n) => (child.position = n + 1));
  }
  const tops = nodes.filter((n) => !n.parent);
  tops.forEach((top, n) => (top.position = n + 1));
  const duration = nodes.reduce((max, n) => Math.max(max, n.end), 0);
  // The path starts at the root of the span that ended last.
  let top = nodes.reduce((last, n) => (!last || n.end > last.end ? n : last), null);
  while (top && top.parent) top = top.parent;
  if (top) markCriticalPath(top);
  return {
    nodes,
    base,
    duration,
    root: top,
    roots: tops,
    services: [...new Set(nodes.map((n) => n.service))].sort(),
    errors: nodes.filter((n) => n.error).length,
  };
}

// The critical path: the chain of spans that determines the end-to-end duration (the spans to make faster
// to make the trace faster). From the root, with the current point at the span's end: among the children
// that end before the point, the one ending latest is on the path; the walk descends into it, then moves
// the point back to that child's start and repeats with the children that end before the new point, until
// none is left. Children that overlap a chosen child are skipped: they did not delay their parent. A child
// that ends after its parent (another host's clock a little ahead, or work that outlives the request)
// moves the parent's starting point to that end, since it is what ended last. Marks node.critical.
export function markCriticalPath(root) {
  const stack = [root];
  while (stack.length) {
    const node = stack.pop();
    node.critical = true;
    const children = [...node.children].sort((a, b) => b.end - a.end);
    let point = Math.max(node.end, children.length ? children[0].end : node.end);
    for (const child of children) {
      if (child.end > point) continue;
      stack.push(child);
      point = child.start;
    }
  }
}
