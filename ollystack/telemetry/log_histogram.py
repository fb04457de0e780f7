"""Log records per severity over time: the log explorer's histogram.

Without a text, attribute or trace filter the counts come from the ``log_volume_1m`` view (records per
minute, service and severity), so a week of logs is a few thousand rows however many records it holds.
Those filters can only be answered by the raw table; that query counts at most ``RAW_CAP`` matching
records (the newest) and says so with ``partial``, so a broad filter over a long range stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ollystack.clickhouse import get_backend
from ollystack.clickhouse.queries import minute_range, select
from ollystack.clickhouse.views import SEVERITY
from ollystack.telemetry.logs import LogQuery, log_filters

NS_PER_S = 1_000_000_000
# the view's severity classes, in stacking order (bottom first), and the lowest number of each
SEVERITIES = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "UNSPECIFIED")
SEVERITY_FLOORS = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}
STEPS = (1, 5, 10, 30, 60, 300, 900, 1800, 3600, 10800, 21600, 43200, 86400)
TARGET_BUCKETS = 120
MAX_BUCKETS = 1500
RAW_CAP = 200_000
VIEW = "log_volume_1m"
RAW = "logs"


@dataclass(frozen=True)
class Histogram:
    step_seconds: int
    times: list[int]  # bucket starts, Unix seconds, every bucket of the range (empty ones too)
    counts: dict[str, list[int]] = field(default_factory=dict)  # severity → records per bucket (seen only)
    source: str = VIEW  # VIEW or RAW
    partial: bool = False  # RAW only: the newest RAW_CAP matching records were counted, older ones not


def uses_view(query: LogQuery) -> bool:
    """Whether the per-minute view can answer ``query``: only service and severity classes are kept."""
    if query.text or query.attributes or query.trace_id or query.severity_text:
        return False
    return query.severity_min is None or query.severity_min in SEVERITY_FLOORS.values()


def choose_step(start_ns: int, end_ns: int, minimum: int = 1) -> int:
    """The smallest step from ``STEPS`` (at least ``minimum``) that splits the range into at most
    ``TARGET_BUCKETS`` buckets."""
    seconds = max(1, (end_ns - start_ns) // NS_PER_S)
    for step in STEPS:
        if step >= minimum and seconds / step <= TARGET_BUCKETS:
            return step
    return STEPS[-1]


def check_step(start_ns: int, end_ns: int, step: int) -> None:
    """``ValueError`` with what to send when ``step`` cannot be drawn for this range."""
    if step < 1:
        raise ValueError("the step must be at least 1 second")
    buckets = (end_ns - start_ns) // (step * NS_PER_S) + 1
    if buckets > MAX_BUCKETS:
        raise ValueError(
            f"a step of {step} s makes {buckets} buckets over this range; at most {MAX_BUCKETS}, "
            "send a longer step or a shorter range"
        )


def bucket_starts(start_ns: int, end_ns: int, step: int) -> list[int]:
    first = start_ns // NS_PER_S // step * step
    last = max(first, (end_ns - 1) // NS_PER_S // step * step)
    return list(range(first, last + 1, step))


def log_histogram(tenant_id: str, query: LogQuery, step_seconds: int | None = None) -> Histogram:
    """Records of ``query`` (cursor and limit ignored) per severity class and time bucket.

    The view is read when it can answer; its buckets are whole minutes, so steps below a minute are
    raised to one (the first bucket may count records of its minute before ``start``)."""
    view = uses_view(query)
    if step_seconds is None:
        step = choose_step(query.start_ns, query.end_ns, 60 if view else 1)
    else:
        step = step_seconds
        check_step(query.start_ns, query.end_ns, step)
        if view and step % 60:
            step = max(60, step // 60 * 60)
    times = bucket_starts(query.start_ns, query.end_ns, step)
    rows, partial = _view_counts(tenant_id, query, step) if view else _raw_counts(tenant_id, query, step)
    index = {t: n for n, t in enumerate(times)}
    counts: dict[str, list[int]] = {}
    for bucket, severity, records in rows:
        position = index.get(int(bucket))
        if position is None:
            continue
        counts.setdefault(str(severity), [0] * len(times))[position] += int(records)
    ordered = {s: counts[s] for s in SEVERITIES if s in counts}
    return Histogram(step, times, ordered, VIEW if view else RAW, partial)


def _bucket(column: str) -> str:
    return f"intDiv(toUnixTimestamp({column}), {{step:UInt32}}) * {{step:UInt32}}"


def _view_counts(tenant_id: str, query: LogQuery, step: int) -> tuple[list[tuple[int, str, int]], bool]:
    q = minute_range(
        select(VIEW, tenant_id, [f"{_bucket('minute')} AS bucket", "severity", "sum(records)"]),
        "minute",
        query.start_ns,
        query.end_ns,
    )
    if query.service is not None:
        q = q.filter("service_name = {service:String}", service=query.service)
    if query.severity_min is not None:
        wanted = [name for name, floor in SEVERITY_FLOORS.items() if floor >= query.severity_min]
        q = q.filter("severity IN {severities:Array(String)}", severities=wanted)
    q = replace(q, params={**q.params, "step": step}).grouped("bucket, severity")
    sql, params = q.sql()
    return [(int(b), str(s), int(n)) for b, s, n in get_backend().query(sql, params).rows], False


def _raw_counts(tenant_id: str, query: LogQuery, step: int) -> tuple[list[tuple[int, str, int]], bool]:
    inner = log_filters(select(RAW, tenant_id, ["timestamp", "severity_number"]), query)
    inner_sql, params = inner.ordered("timestamp DESC").limited(RAW_CAP).sql()
    sql = (
        f"SELECT {_bucket('timestamp')} AS bucket, {SEVERITY} AS severity, count()\n"
        f"FROM ({inner_sql})\nGROUP BY bucket, severity"
    )
    rows = [(int(b), str(s), int(n)) for b, s, n in get_backend().query(sql, {**params, "step": step}).rows]
    return rows, sum(n for _, _, n in rows) >= RAW_CAP
