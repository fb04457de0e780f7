"""The PromQL read helpers: queries, series, label values and metadata for one tenant.

Each returns the ``data`` part of Prometheus's HTTP API answer (or what it is built from), so that the views
only parse parameters and wrap the result in ``{"status": "success", "data": ...}``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import promql_parser as pp

from ollystack.clickhouse import get_backend
from ollystack.telemetry.promql import engine, sql
from ollystack.telemetry.promql.errors import BadData
from ollystack.telemetry.promql.names import EXPOSED_KINDS, Family
from ollystack.telemetry.promql.parse import parse_query

Labels = dict[str, str]
MAX_SERIES_LISTED = 100_000


def catalog(tenant_id: str, start_ms: int | None = None, end_ms: int | None = None) -> list[Family]:
    """Every metric of the tenant with data in the range (all time when unbounded), as Prometheus families.

    Name matchers are resolved against this list in Python, so the sample query can select exact OTel
    metric names (the leading column of the table's sort key) rather than computing names per row.
    """
    text, params = sql.Statements(tenant_id).catalog(start_ms, end_ms)
    rows = get_backend().query(text, params).as_dicts()
    return [
        Family(
            otel_name=row["metric_name"],
            kind=row["kind"],
            unit=row["unit"],
            description=row["description"],
            monotonic=bool(row["monotonic"]),
            cumulative=bool(row["cumulative"]),
            services=tuple(sorted(s for s in row["services"] if s)),
        )
        for row in rows
    ]


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it (Go's shortest 'f' formatting, NaN, +Inf, -Inf)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(np.format_float_positional(value, trim="-"))


def _seconds(ms: int | float) -> float | int:
    seconds = ms / 1000
    return int(seconds) if seconds == int(seconds) else seconds


def _sorted_labels(labels: Labels) -> Labels:
    return dict(sorted(labels.items()))


def _result(value: engine.Value, times: np.ndarray, instant: bool) -> dict[str, Any]:
    if isinstance(value, engine.Scalar):
        if instant:
            return {"resultType": "scalar", "result": [_seconds(times[0]), format_value(value.values[0])]}
        return {
            "resultType": "matrix",
            "result": [
                {
                    "metric": {},
                    "values": [
                        [_seconds(t), format_value(v)] for t, v in zip(times, value.values, strict=True)
                    ],
                }
            ],
        }
    if isinstance(value, engine.String):
        return {"resultType": "string", "result": [_seconds(times[0]), value.value]}
    if isinstance(value, engine.Matrix):
        series = [
            {"metric": _sorted_labels(lab), "values": [[_seconds(t), format_value(v)] for t, v in points]}
            for lab, points in zip(value.labels, value.points, strict=True)
            if points
        ]
        return {"resultType": "matrix", "result": sorted(series, key=lambda s: sorted(s["metric"].items()))}
    if instant:
        return {
            "resultType": "vector",
            "result": [
                {"metric": _sorted_labels(lab), "value": [_seconds(times[0]), format_value(v[0])]}
                for lab, v, p in zip(value.labels, value.values, value.present, strict=True)
                if p[0]
            ],
        }
    series = []
    for lab, v, p in zip(value.labels, value.values, value.present, strict=True):
        idx = np.flatnonzero(p)
        if len(idx):
            series.append(
                {
                    "metric": _sorted_labels(lab),
                    "values": [[_seconds(times[i]), format_value(v[i])] for i in idx],
                }
            )
    return {"resultType": "matrix", "result": sorted(series, key=lambda s: sorted(s["metric"].items()))}


def _evaluate(
    tenant_id: str, query: str, start_ms: int, end_ms: int, step_ms: int, timeout: float | None
) -> tuple[engine.Value, np.ndarray]:
    expr = parse_query(query)
    count = engine.check_steps(start_ms, end_ms, step_ms)
    lo, hi = engine.walk_window(expr, start_ms, end_ms)
    families = catalog(tenant_id, lo, hi)
    ev = engine.Evaluation(tenant_id, start_ms, step_ms, count, families, timeout)
    return ev.eval(expr), ev.times


def instant_query(tenant_id: str, query: str, time_ms: int, timeout: float | None = None) -> dict[str, Any]:
    """``/api/v1/query``: the value of ``query`` at ``time_ms``."""
    value, times = _evaluate(tenant_id, query, time_ms, time_ms, 1, timeout)
    return _result(value, times, instant=True)


def range_query(
    tenant_id: str, query: str, start_ms: int, end_ms: int, step_ms: int, timeout: float | None = None
) -> dict[str, Any]:
    """``/api/v1/query_range``: ``query`` at ``start, start + step, ... <= end``."""
    if step_ms <= 0:
        engine.check_steps(start_ms, end_ms, step_ms)
    value, times = _evaluate(tenant_id, query, start_ms, end_ms, step_ms, timeout)
    if isinstance(value, engine.String | engine.Matrix):
        kind = "string" if isinstance(value, engine.String) else "range vector"
        raise BadData(f'invalid expression type "{kind}" for range query, must be Scalar or instant Vector')
    return _result(value, times, instant=False)


def _selectors(matches: Sequence[str]) -> list[pp.VectorSelector]:
    out = []
    for match in matches:
        try:
            expr = pp.parse(match)
        except ValueError as exc:
            raise BadData(f'invalid parameter "match[]": {exc}') from None
        if not isinstance(expr, pp.VectorSelector):
            raise BadData(f'invalid parameter "match[]": {match!r} is not a series selector')
        out.append(expr)
    return out


def find_series(
    tenant_id: str,
    matches: Sequence[str],
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: int = MAX_SERIES_LISTED,
) -> list[Labels]:
    """Label sets of the series that match any of the selectors (every series when none is given) with
    samples in the range (all time when unbounded); ``/series``, ``/labels`` and label values use it."""
    families = catalog(tenant_id, start_ms, end_ms)
    selectors = _selectors(matches) if matches else [pp.parse('{__name__=~".+"}')]
    ev = engine.Evaluation(tenant_id, start_ms or 0, 1, 1, families)
    found: dict[tuple[tuple[str, str], ...], Labels] = {}
    for vs in selectors:
        assert isinstance(vs, pp.VectorSelector)
        selection, names = ev.selection(vs)
        if not selection.metric_names:
            continue
        text, params = sql.Statements(tenant_id).series(selection, start_ms, end_ms, limit)
        for row in get_backend().query(text, params).as_dicts():
            labels = engine.series_labels(row, names)
            found[tuple(sorted(labels.items()))] = _sorted_labels(labels)
    return [found[key] for key in sorted(found)][:limit]


def label_names(series: Sequence[Labels]) -> list[str]:
    return sorted({name for labels in series for name in labels})


def label_values(series: Sequence[Labels], name: str) -> list[str]:
    return sorted({labels[name] for labels in series if labels.get(name)})


def metric_names(families: Sequence[Family]) -> list[str]:
    return sorted(
        {name for f in families if f.kind in EXPOSED_KINDS and not f.delta for name in f.series_names}
    )


def metadata(
    families: Sequence[Family], metric: str | None = None, limit: int | None = None
) -> dict[str, Any]:
    """``/api/v1/metadata``: type, help and unit per metric family name."""
    out: dict[str, list[dict[str, str]]] = {}
    for family in families:
        if family.kind not in EXPOSED_KINDS or family.delta:
            continue
        name = family.base
        if metric is not None and name != metric:
            continue
        entry = {"type": family.prometheus_type, "help": family.description, "unit": family.unit}
        if entry not in out.setdefault(name, []):
            out[name].append(entry)
    names = sorted(out)
    if limit is not None and limit >= 0:
        names = names[:limit] if limit > 0 else names
    return {name: out[name] for name in names}


def now_ms() -> int:
    return time.time_ns() // 1_000_000
