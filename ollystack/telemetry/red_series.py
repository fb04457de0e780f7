"""RED over time: request, error and latency figures per service or operation, in equal time buckets.

Read from the per-second and per-minute aggregates (``service_metrics_1s``/``_1m`` and the 5-minute and
hourly rollups of the latter, see ``ollystack.clickhouse.rollups``), never from raw spans:
the step is chosen from the range so that a chart has at most ``MAX_POINTS`` buckets; recent ranges up to
15 minutes read the per-second view (kept two days) in steps of seconds, others the per-minute view.
Buckets are aligned on multiples of the step since the epoch, so a chart refreshed a few seconds later
keeps its buckets. Counts are sums of sampling weights, as in ``services.service_red``.

Also the slowest requests of a service (entry spans by duration), which trace search cannot sort by.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from ollystack.clickhouse import get_backend
from ollystack.clickhouse.queries import Select, minute_range, ns, select, time_range
from ollystack.clickhouse.rollups import red_rows
from ollystack.clickhouse.views import ENTRY_KINDS, RED_1S_TTL_DAYS, SLOWEST_KEPT, digest

NS_PER_S = 1_000_000_000
MAX_POINTS = 120
# steps people read easily; the smallest that keeps a range within MAX_POINTS is used
STEPS_S = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
MINUTE = 60
# the per-second view covers a range that starts no earlier than this before now (its TTL, less a margin)
SECONDS_VIEW_REACH_S = RED_1S_TTL_DAYS * 86400 - 3600
# and is read for ranges up to 15 minutes: longer ones would merge up to 60 times the rows of the minute
# view (sketch merges are most of a series' cost) for steps that are nearly a minute anyway
SECONDS_VIEW_MAX_RANGE_S = 900
DEFAULT_TOP_OPERATIONS = 5
MAX_TOP_OPERATIONS = 20
MAX_SLOWEST = 100
SLOWEST_CANDIDATES = 10  # requests read per slow trace asked for, before keeping one per trace
_MERGE = digest("Merge")
# the sketch's levels (QUANTILES) are 0.5, 0.9, 0.95, 0.99: positions of p50, p95, p99 in its answer
_P50, _P95, _P99 = 0, 2, 3


@dataclass(frozen=True)
class Buckets:
    """``count`` buckets of ``step_s`` seconds from ``origin_s`` (Unix seconds), read from ``source``."""

    origin_s: int
    step_s: int
    count: int
    source: str
    start_ns: int  # the range asked
    end_ns: int

    @property
    def time_column(self) -> str:
        return "second" if self.source == "service_metrics_1s" else "minute"

    @property
    def resolution_s(self) -> int:
        return 1 if self.source == "service_metrics_1s" else MINUTE

    def times(self) -> list[int]:
        return [self.origin_s + i * self.step_s for i in range(self.count)]

    @cached_property
    def covered_s(self) -> tuple[float, ...]:
        """Seconds of each bucket that the data read covers: the first bucket starts at the aggregate's row
        boundary before the range start, the last ends at the range's end (the whole step in between)."""
        data_start = self.start_ns // NS_PER_S // self.resolution_s * self.resolution_s
        data_end = self.end_ns / NS_PER_S
        return tuple(
            max(min(begin + self.step_s, data_end) - max(begin, data_start), 1.0) for begin in self.times()
        )


def buckets_for(
    start_ns: int, end_ns: int, now_ns: int | None = None, max_points: int = MAX_POINTS
) -> Buckets:
    """The buckets of a chart of ``[start_ns, end_ns)``: the smallest listed step giving at most
    ``max_points`` buckets, from the per-second view for recent ranges up to 15 minutes (steps under a
    minute), else from the per-minute view (steps of whole minutes)."""
    if end_ns < start_ns:
        raise ValueError("the range ends before it starts")
    now_ns = time.time_ns() if now_ns is None else now_ns
    seconds_view = (
        start_ns >= now_ns - SECONDS_VIEW_REACH_S * NS_PER_S
        and end_ns - start_ns <= SECONDS_VIEW_MAX_RANGE_S * NS_PER_S
    )
    end_s = math.ceil(end_ns / NS_PER_S)
    for step in STEPS_S:
        if step < MINUTE and not seconds_view:
            continue
        origin = start_ns // NS_PER_S // step * step
        count = max(1, math.ceil((end_s - origin) / step))
        if count <= max_points or step == STEPS_S[-1]:
            break
    source = "service_metrics_1s" if step < MINUTE else "service_metrics_1m"
    return Buckets(origin, step, count, source, start_ns, end_ns)


@dataclass(frozen=True)
class RedSeries:
    """One service's (or operation's) figures per bucket; latencies are None where there were no
    requests."""

    key: str
    requests: tuple[float, ...]
    errors: tuple[float, ...]
    p50_ns: tuple[float | None, ...]
    p95_ns: tuple[float | None, ...]
    p99_ns: tuple[float | None, ...]

    @property
    def total_requests(self) -> float:
        return sum(self.requests)


@dataclass(frozen=True)
class SeriesSet:
    buckets: Buckets
    series: tuple[RedSeries, ...]


def _rows(tenant_id: str, buckets: Buckets, columns: list[str]) -> Select:
    """The aggregate rows overlapping the range (from the row boundary at or before its start): seconds
    from the per-second view, minutes from the per-minute view and the rollups that fit the step."""
    if buckets.source != "service_metrics_1s":
        return red_rows(tenant_id, buckets.start_ns, buckets.end_ns, columns, bucket_s=buckets.step_s)
    start = buckets.start_ns // NS_PER_S * NS_PER_S
    return time_range(select(buckets.source, tenant_id, columns), "second", start, buckets.end_ns)


def _bucketed(tenant_id: str, buckets: Buckets, key: str) -> Select:
    columns = [
        f"{key} AS series_key",
        f"intDiv(toInt64(toUnixTimestamp({buckets.time_column})) - {{origin_s:Int64}}, {{step_s:Int64}})"
        " AS bucket",
        "sum(requests) AS requests_sum",
        "sum(errors) AS errors_sum",
        f"{_MERGE}(duration) AS quantiles",
    ]
    query = _rows(tenant_id, buckets, columns)
    return replace(query, params={**query.params, "origin_s": buckets.origin_s, "step_s": buckets.step_s})


def _collect(buckets: Buckets, rows: list[tuple[Any, ...]]) -> tuple[RedSeries, ...]:
    """Rows of (key, bucket, requests, errors, quantiles) as one series per key, zeros where missing."""
    n = buckets.count
    found: dict[str, dict[str, list[Any]]] = {}
    for key, bucket, requests, errors, quantiles in rows:
        index = int(bucket)
        if not 0 <= index < n:
            continue
        series = found.setdefault(
            key,
            {
                "requests": [0.0] * n,
                "errors": [0.0] * n,
                "p50": [None] * n,
                "p95": [None] * n,
                "p99": [None] * n,
            },
        )
        series["requests"][index] = float(requests)
        series["errors"][index] = float(errors)
        if requests:
            series["p50"][index] = float(quantiles[_P50])
            series["p95"][index] = float(quantiles[_P95])
            series["p99"][index] = float(quantiles[_P99])
    return tuple(
        RedSeries(
            key,
            tuple(s["requests"]),
            tuple(s["errors"]),
            tuple(s["p50"]),
            tuple(s["p95"]),
            tuple(s["p99"]),
        )
        for key, s in found.items()
    )


def service_series(
    tenant_id: str, start_ns: int, end_ns: int, service: str | None = None, now_ns: int | None = None
) -> SeriesSet:
    """RED per bucket of every service (or of one), counted on entry spans like ``service_red``: where
    requests enter a service (SERVER/CONSUMER or root spans). Services without requests are left out."""
    buckets = buckets_for(start_ns, end_ns, now_ns)
    query = _bucketed(tenant_id, buckets, "service_name").filter("entry = 1")
    if service is not None:
        query = query.filter("service_name = {service:String}", service=service)
    sql, params = query.grouped("series_key, bucket").ordered("series_key, bucket").sql()
    return SeriesSet(buckets, _collect(buckets, get_backend().query(sql, params).rows))


def operation_series(
    tenant_id: str,
    service: str,
    start_ns: int,
    end_ns: int,
    top: int = DEFAULT_TOP_OPERATIONS,
    now_ns: int | None = None,
) -> SeriesSet:
    """RED per bucket of the ``top`` operations (span names) of one service with the most requests in the
    range, over all their spans like ``operation_red``; busiest first."""
    top = max(1, min(int(top), MAX_TOP_OPERATIONS))
    buckets = buckets_for(start_ns, end_ns, now_ns)
    busiest = _rows(tenant_id, buckets, ["operation"])
    busiest = busiest.filter("service_name = {service:String}", service=service)
    inner, inner_params = (
        busiest.grouped("operation").ordered("sum(requests) DESC, operation").limited(top).sql()
    )
    query = _bucketed(tenant_id, buckets, "operation").filter(
        "service_name = {service:String}", service=service
    )
    query = query.filter(f"operation IN ({inner})", **inner_params)
    sql, params = query.grouped("series_key, bucket").ordered("series_key, bucket").sql()
    series = _collect(buckets, get_backend().query(sql, params).rows)
    return SeriesSet(buckets, tuple(sorted(series, key=lambda s: (-s.total_requests, s.key))))


@dataclass(frozen=True)
class SlowRequest:
    """An entry span of a service (a request it served), and the trace it belongs to."""

    trace_id: str  # hex
    span_id: str  # hex
    operation: str
    start_ns: int
    duration_ns: int
    error: bool


def slowest_requests(
    tenant_id: str, service: str, start_ns: int, end_ns: int, limit: int = 10
) -> list[SlowRequest]:
    """The longest requests served by ``service`` that started in the minutes overlapping ``[start_ns,
    end_ns)`` (like the RED figures beside them), one per trace, longest first.

    Up to ``SLOWEST_KEPT`` requests: merged from ``slowest_requests_1m`` (the longest entry spans per
    service and minute). More, or when those hold fewer than ``limit`` traces (a trace that enters the
    service many times), from the range's spans: the longest ``limit`` times ``SLOWEST_CANDIDATES`` with a
    top-k sort, kept one per trace here, and only when they still hold fewer than ``limit`` traces the exact
    one-per-trace query, which sorts every request of the range (several times slower over a day).
    """
    limit = max(1, min(int(limit), MAX_SLOWEST))
    if limit <= SLOWEST_KEPT:
        query = minute_range(
            select(
                "slowest_requests_1m", tenant_id, [f"groupArraySortedMerge({SLOWEST_KEPT})(top) AS longest"]
            ),
            "minute",
            start_ns,
            end_ns,
        ).filter("service_name = {service:String}", service=service)
        inner, params = query.sql()
        sql = (
            "SELECT lower(hex(r.2)), lower(hex(r.3)), r.4, toString(toUnixTimestamp64Nano(r.5)), -r.1, r.6\n"
            f"FROM ({inner})\nARRAY JOIN longest AS r"
        )
        rows = get_backend().query(sql, params).rows
        found = _one_per_trace(rows, limit)
        if len(found) == limit or len(rows) < SLOWEST_KEPT:
            return found
    minute_ns = MINUTE * NS_PER_S
    query = time_range(
        select(
            "spans",
            tenant_id,
            [
                "lower(hex(trace_id)) AS trace_hex",
                "lower(hex(span_id)) AS span_hex",
                "name",
                f"{ns('timestamp')} AS start_text",
                "duration_ns",
                "status_code = 2 AS failed",
            ],
        ),
        "timestamp",
        start_ns // minute_ns * minute_ns,
        -(-end_ns // minute_ns) * minute_ns,
    )
    query = query.filter("service_name = {service:String}", service=service).filter(
        f"kind IN {ENTRY_KINDS} OR parent_span_id = ''"
    )
    query = query.ordered("duration_ns DESC, trace_hex")
    candidates = limit * SLOWEST_CANDIDATES
    sql, params = query.limited(candidates).sql()
    rows = get_backend().query(sql, params).rows
    found = _one_per_trace(rows, limit)
    if len(found) < limit and len(rows) == candidates:
        sql, params = query.sql()
        sql += "\nLIMIT 1 BY trace_hex\nLIMIT {limit:UInt64}"
        found = _one_per_trace(get_backend().query(sql, {**params, "limit": limit}).rows, limit)
    return found


def _one_per_trace(rows: list[tuple[Any, ...]], limit: int) -> list[SlowRequest]:
    seen: set[str] = set()
    found = []
    for trace, span, name, start, duration, failed in rows:
        if trace in seen:
            continue
        seen.add(trace)
        found.append(SlowRequest(trace, span, name, int(start), int(duration), bool(failed)))
        if len(found) == limit:
            break
    return found
