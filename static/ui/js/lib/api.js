// The REST API as the signed-in user sees it: session cookie + CSRF token, the current tenant on every call.
import { config } from "olly/config.js";

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export function url(path, params = {}) {
  const u = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => u.searchParams.append(key, v));
    else u.searchParams.set(key, value);
  }
  if (config.tenant && !u.searchParams.has("tenant")) u.searchParams.set("tenant", config.tenant);
  return u.toString();
}

// The first readable message of a DRF/our error body: {"error": "..."} or {"field": ["..."]}.
export function errorMessage(body, status) {
  if (!body || typeof body !== "object") return `request failed (HTTP ${status})`;
  if (typeof body.error === "string") return body.error;
  if (typeof body.detail === "string") return body.detail;
  for (const [key, value] of Object.entries(body)) {
    const text = Array.isArray(value) ? value.join(" ") : typeof value === "string" ? value : "";
    if (text) return key === "non_field_errors" ? text : `${key}: ${text}`;
  }
  return `request failed (HTTP ${status})`;
}

async function request(method, path, { params, body, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET") headers["X-CSRFToken"] = document.querySelector('meta[name="csrf-token"]')?.content || "";
  const resp = await fetch(url(path, params), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    signal,
  });
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!resp.ok) throw new ApiError(resp.status, errorMessage(data, resp.status), data);
  return data;
}

export const get = (path, params, options = {}) => request("GET", path, { ...options, params });
export const post = (path, body, params) => request("POST", path, { body, params });
export const put = (path, body, params) => request("PUT", path, { body, params });
export const patch = (path, body, params) => request("PATCH", path, { body, params });
export const del = (path, params) => request("DELETE", path, { params });

// A WebSocket on this host (ws: or wss:) with the tenant; onMessage gets parsed JSON.
export function socket(path, params, onMessage, { onClose } = {}) {
  const u = new URL(url(path, params));
  u.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(u.toString());
  ws.addEventListener("message", (event) => onMessage(JSON.parse(event.data)));
  if (onClose) ws.addEventListener("close", onClose);
  return ws;
}
