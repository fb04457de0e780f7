// The time range and auto-refresh of a page: kept in the URL (?range=1h&refresh=10) so links share them.
import { $ } from "olly/dom.js";

const UNITS = { m: 60, h: 3600, d: 86400 };

export function rangeSeconds(value) {
  const match = /^(\d+)([mhd])$/.exec(value || "");
  return match ? Number(match[1]) * UNITS[match[2]] : 3600;
}

// {start, end} in Unix seconds (what the REST API's start/end accept). For ranges of an hour or more the end
// is now rounded up to 10 s, so reloads and auto-refresh within those seconds ask the same question and the
// server's query cache can answer them.
export function currentRange() {
  const params = new URLSearchParams(window.location.search);
  const range = params.get("range") || "1h";
  const seconds = rangeSeconds(range);
  const grain = seconds >= 3600 ? 10 : 1;
  const end = Math.ceil(Date.now() / 1000 / grain) * grain;
  return { start: end - seconds, end, range };
}

function setParam(name, value) {
  const u = new URL(window.location.href);
  u.searchParams.set(name, value);
  window.history.replaceState(null, "", u);
}

// Wires the #range and #refresh selects; calls load() now, on every change and every refresh period.
export function bindRange(load) {
  const params = new URLSearchParams(window.location.search);
  const range = $("#range");
  const refresh = $("#refresh");
  let timer = null;
  const schedule = () => {
    if (timer) clearInterval(timer);
    const seconds = Number(refresh?.value || 0);
    if (seconds > 0) timer = setInterval(() => load(currentRange()), seconds * 1000);
  };
  if (range) {
    if (params.get("range")) range.value = params.get("range");
    range.addEventListener("change", () => {
      setParam("range", range.value);
      load(currentRange());
    });
  }
  if (refresh) {
    if (params.get("refresh")) refresh.value = params.get("refresh");
    refresh.addEventListener("change", () => {
      setParam("refresh", refresh.value);
      schedule();
    });
  }
  schedule();
  load(currentRange());
}
