// RED charts of the service pages, on uPlot (npm: uplot). Unlike a plain line chart, a value with no
// neighbour (a bucket with requests between buckets without any: latency and error rate are null there)
// is drawn as a dot, so a single burst of traffic still shows. Times are Unix seconds.
import uPlot from "uplot";
import { PALETTE } from "olly/charts.js";

const present = (v) => v !== null && v !== undefined;

// uPlot points.filter: indices of values whose neighbours are both missing.
function isolated(u, seriesIndex, show) {
  if (show) return null;
  const values = u.data[seriesIndex];
  const found = [];
  for (let i = 0; i < values.length; i++) {
    if (present(values[i]) && !present(values[i - 1]) && !present(values[i + 1])) found.push(i);
  }
  return found.length ? found : null;
}

function width(el) {
  return Math.max(el.clientWidth || el.parentElement?.clientWidth || 300, 120);
}

// series: [{label, values, color?}]; format(v) labels the y axis and the legend. Returns the plot; call
// plot.destroy() before drawing into the element again.
export function redChart(el, xs, series, { height = 200, format = (v) => String(v) } = {}) {
  el.replaceChildren();
  const opts = {
    width: width(el),
    height,
    cursor: { drag: { x: true, y: false } },
    legend: { show: series.length > 0 },
    scales: { y: { range: (u, min, max) => [0, max > 0 ? max * 1.05 : 1] } },
    axes: [{}, { values: (u, ticks) => ticks.map(format), size: 78 }],
    series: [
      {},
      ...series.map((s, i) => ({
        label: s.label,
        stroke: s.color || PALETTE[i % PALETTE.length],
        width: 1.5,
        value: (u, v) => (present(v) ? format(v) : "–"),
        points: { show: false, filter: isolated, size: 6, fill: s.color || PALETTE[i % PALETTE.length] },
      })),
    ],
  };
  const plot = new uPlot(opts, [xs, ...series.map((s) => s.values)], el);
  const observer = new ResizeObserver(() => plot.setSize({ width: width(el), height }));
  observer.observe(el);
  const destroy = plot.destroy.bind(plot);
  plot.destroy = () => {
    observer.disconnect();
    destroy();
  };
  return plot;
}

// A small chart without axes for a table cell; values may be null (drawn as gaps, lone values as dots).
export function redSparkline(el, xs, ys, { color = PALETTE[0], height = 28, width: w = 110 } = {}) {
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
