// Charts on uPlot (npm: uplot): time series, sparklines, scatter and stacked bars. Times are Unix seconds.
import uPlot from "uplot";
import { PALETTE } from "olly/palette.js";

export { PALETTE };

function width(el) {
  return Math.max(el.clientWidth || el.parentElement?.clientWidth || 400, 120);
}

// Redraw at the container's width when it changes (and stop when the chart is destroyed).
function fit(plot, el, height) {
  const observer = new ResizeObserver(() => plot.setSize({ width: width(el), height }));
  observer.observe(el);
  const destroy = plot.destroy.bind(plot);
  plot.destroy = () => {
    observer.disconnect();
    destroy();
  };
  return plot;
}

const present = (v) => v !== null && v !== undefined;

// uPlot points.filter: a value with no neighbour (between nulls: a bucket without requests has no latency
// or error rate) is drawn as a dot, so a single burst of traffic still shows. Lines draw no other points.
function isolated(u, seriesIndex, show) {
  if (show) return null;
  const values = u.data[seriesIndex];
  const found = [];
  for (let i = 0; i < values.length; i++) {
    if (present(values[i]) && !present(values[i - 1]) && !present(values[i + 1])) found.push(i);
  }
  return found.length ? found : null;
}

// xs: [t…]; series: [{label, values: […], color?, format?}]; yMin: a fixed bottom (0 for rates).
// Returns the plot; call plot.destroy() before drawing into the element again.
export function timeSeries(el, xs, series, { height = 220, format = (v) => String(v), yMin } = {}) {
  el.replaceChildren();
  const opts = {
    width: width(el),
    height,
    cursor: { drag: { x: true, y: false } },
    legend: { show: series.length > 0 },
    scales: yMin === undefined ? {} : { y: { range: (u, min, max) => [yMin, max > yMin ? max * 1.05 : yMin + 1] } },
    axes: [{}, { values: (u, ticks) => ticks.map(format), size: 78 }],
    series: [
      {},
      ...series.map((s, i) => {
        const color = s.color || PALETTE[i % PALETTE.length];
        return {
          label: s.label,
          stroke: color,
          width: 1.5,
          value: (u, v) => (present(v) ? (s.format || format)(v) : "–"),
          points: { show: false, filter: isolated, size: 6, fill: color },
        };
      }),
    ],
  };
  return fit(new uPlot(opts, [xs, ...series.map((s) => s.values)], el), el, height);
}

// A small chart without axes for a table cell; nulls are gaps, lone values dots.
export function sparkline(el, xs, ys, { color = PALETTE[0], height = 28, width: w = 120 } = {}) {
  el.replaceChildren();
  const opts = {
    width: w,
    height,
    cursor: { show: false },
    legend: { show: false },
    select: { show: false },
    padding: [4, 4, 2, 4],
    axes: [{ show: false }, { show: false }],
    scales: { x: { time: false }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    series: [{}, { stroke: color, fill: `${color}22`, width: 1.25, points: { show: false, filter: isolated, size: 4, fill: color } }],
  };
  return new uPlot(opts, [xs, ys], el);
}

// points: [{x (Unix s), y, error?: bool, id}], onPick(point) on click.
export function scatter(el, points, { height = 200, format = (v) => String(v), onPick } = {}) {
  el.replaceChildren();
  const ok = points.filter((p) => !p.error);
  const bad = points.filter((p) => p.error);
  const xs = [...new Set(points.map((p) => p.x))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const column = (group) => {
    const ys = new Array(xs.length).fill(null);
    group.forEach((p) => (ys[index.get(p.x)] = p.y));
    return ys;
  };
  const opts = {
    width: width(el),
    height,
    mode: 1,
    cursor: { drag: { x: false, y: false }, points: { size: 10 } },
    axes: [{}, { values: (u, ticks) => ticks.map(format), size: 64 }],
    scales: { y: { range: (u, min, max) => [0, max > 0 ? max * 1.05 : 1] } },
    series: [
      {},
      { label: "ok", stroke: PALETTE[0], paths: () => null, points: { show: true, size: 6, fill: PALETTE[0] }, value: (u, v) => (v === null ? "–" : format(v)) },
      { label: "error", stroke: PALETTE[1], paths: () => null, points: { show: true, size: 6, fill: PALETTE[1] }, value: (u, v) => (v === null ? "–" : format(v)) },
    ],
  };
  const plot = new uPlot(opts, [xs, column(ok), column(bad)], el);
  if (onPick) {
    plot.over.addEventListener("click", () => {
      const i = plot.cursor.idx;
      if (i === null || i === undefined) return;
      const picked = points.find((p) => p.x === xs[i]);
      if (picked) onPick(picked);
    });
  }
  return fit(plot, el, height);
}

// Stacked bars: series values are stacked bottom-up in the given order (the first series at the bottom).
export function stackedBars(el, xs, series, { height = 120 } = {}) {
  el.replaceChildren();
  const stacked = [];
  let running = xs.map(() => 0);
  for (const s of series) {
    running = running.map((v, i) => v + (s.values[i] || 0));
    stacked.push(running);
  }
  // uPlot draws later series over earlier ones: the tallest (cumulative top) goes first.
  const order = series.map((s, i) => i).reverse();
  const bars = uPlot.paths.bars({ size: [0.8, 40] });
  const opts = {
    width: width(el),
    height,
    axes: [{}, { size: 48 }],
    scales: { y: { range: (u, min, max) => [0, max > 0 ? max : 1] } },
    series: [
      {},
      ...order.map((i) => ({
        label: series[i].label,
        stroke: series[i].color || PALETTE[i % PALETTE.length],
        fill: series[i].color || PALETTE[i % PALETTE.length],
        paths: bars,
        points: { show: false },
        value: (u, v, si, di) => (di === null || di === undefined ? "–" : String(series[i].values[di] ?? 0)),
      })),
    ],
  };
  return fit(new uPlot(opts, [xs, ...order.map((i) => stacked[i])], el), el, height);
}
