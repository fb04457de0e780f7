// The colours of series and services, shared by the charts and the trace waterfall (which draws no chart,
// so it does not load uPlot for them).
export const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"];
