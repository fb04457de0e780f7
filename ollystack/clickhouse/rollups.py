"""RED rows of any range of minutes, read from the coarsest aggregates that fit it.

``service_metrics_1m`` has a row per service, operation, entry flag and minute; ``service_metrics_5m`` and
``service_metrics_1h`` hold the same rows rolled up (``ollystack.clickhouse.views.RED_ROLLUPS``). A range is
cut into whole hours, then whole 5-minute buckets at its ends, then single minutes, and each piece is read
from its table: a day merges fewer than 150 rows per key instead of 1 440, with the same result.

Each piece is one more table for the engine to plan and read, which costs about as much as merging
thousands of rows (measured: counting one hour of ``service_metrics_1m`` rows takes 17 ms where
``SELECT 1`` takes 5 ms). So a coarser table is read only for a middle of at least ``MIN_ROWS`` of its
rows: the last hour comes from the minutes alone, 6 hours from 5-minute rows and minutes. On 10 M spans the
six RED reads behind the service list and the service page (every service, one service, its operations,
both series, the service names) took 507-576 → 358-416 ms over 1 hour, 791-809 → 706 ms over 6 hours.
"""

from __future__ import annotations

from dataclasses import replace

from ollystack.clickhouse.queries import Select, select
from ollystack.clickhouse.views import RED_ROLLUPS

NS_PER_S = 1_000_000_000
MINUTE_TABLE = "service_metrics_1m"
MINUTE_S = 60
# coarsest first
LEVELS: tuple[tuple[str, int], ...] = (
    *sorted(RED_ROLLUPS, key=lambda level: -level[1]),
    (MINUTE_TABLE, MINUTE_S),
)
MIN_ROWS = 12  # a coarser table's rows a piece must cover to be read from it


def pieces(start_s: int, end_s: int, bucket_s: int | None = None) -> list[tuple[str, int, int]]:
    """``[start_s, end_s)`` (whole minutes) as ``(table, from_s, to_s)`` pieces, coarsest tables for the
    middle where they cover at least ``MIN_ROWS`` of their rows. With ``bucket_s`` only tables whose rows
    fit in buckets of that many seconds are used (a chart's bucket must not receive a row that reaches into
    the next one)."""
    if start_s % MINUTE_S or end_s % MINUTE_S:
        raise ValueError("a range of rows starts and ends on a minute")
    levels = [(t, s) for t, s in LEVELS if bucket_s is None or bucket_s % s == 0]
    return _split(start_s, end_s, levels)


def _split(start_s: int, end_s: int, levels: list[tuple[str, int]]) -> list[tuple[str, int, int]]:
    if start_s >= end_s:
        return []
    (table, step), finer = levels[0], levels[1:]
    if not finer:
        return [(table, start_s, end_s)]
    inner_start = -(-start_s // step) * step
    inner_end = end_s // step * step
    if inner_end - inner_start < MIN_ROWS * step:
        return _split(start_s, end_s, finer)
    return [
        *_split(start_s, inner_start, finer),
        (table, inner_start, inner_end),
        *_split(inner_end, end_s, finer),
    ]


def red_rows(
    tenant_id: str, start_ns: int, end_ns: int, columns: list[str], bucket_s: int | None = None
) -> Select:
    """A query over the RED rows of the minutes overlapping ``[start_ns, end_ns)`` (the rows of
    ``service_metrics_1m``, whichever tables they come from), selecting ``columns``."""
    start_s = start_ns // (MINUTE_S * NS_PER_S) * MINUTE_S
    end_s = max(start_s, -(-end_ns // (MINUTE_S * NS_PER_S)) * MINUTE_S)
    parts = pieces(start_s, end_s, bucket_s) or [(MINUTE_TABLE, start_s, start_s)]
    params: dict[str, object] = {}
    branches = []
    for n, (table, begin, end) in enumerate(parts):
        branches.append(
            f"SELECT * FROM {table} WHERE tenant_id = {{tenant_id:String}}"
            f" AND minute >= toDateTime({{piece_{n}_from:Int64}}, 'UTC')"
            f" AND minute < toDateTime({{piece_{n}_to:Int64}}, 'UTC')"
        )
        params[f"piece_{n}_from"] = begin
        params[f"piece_{n}_to"] = end
    source = "(\n    " + "\n    UNION ALL ".join(branches) + "\n)"
    query = select(source, tenant_id, columns)  # the branches share its {tenant_id} parameter
    return replace(query, params={**query.params, **params})
