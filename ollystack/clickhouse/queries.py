"""Query builders. Every builder filters on the tenant; reading without one is named ``_dangerous_no_tenant``.

Aliases in the column lists never reuse a column name: ClickHouse would resolve that name in WHERE to the
alias, so hex/base64 forms are selected as ``<column>_hex``/``<column>_b64``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

_PARAM = re.compile(r"\{(\w+):")


@dataclass(frozen=True)
class Select:
    table: str
    columns: tuple[str, ...]
    where: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    group_by: str = ""
    order_by: str = ""
    limit: int | None = None

    def filter(self, condition: str, **params: Any) -> Select:
        """Add a condition; every ``{name:Type}`` it uses must be given as a keyword."""
        missing = set(_PARAM.findall(condition)) - set(params) - set(self.params)
        if missing:
            raise ValueError(f"no value for query parameters {sorted(missing)}")
        return replace(self, where=(*self.where, condition), params={**self.params, **params})

    def ordered(self, order_by: str) -> Select:
        return replace(self, order_by=order_by)

    def grouped(self, group_by: str) -> Select:
        return replace(self, group_by=group_by)

    def limited(self, limit: int) -> Select:
        return replace(self, limit=int(limit))

    def sql(self) -> tuple[str, dict[str, Any]]:
        parts = [f"SELECT {', '.join(self.columns)}", f"FROM {self.table}"]
        if self.where:
            parts.append("WHERE " + " AND ".join(f"({w})" for w in self.where))
        if self.group_by:
            parts.append(f"GROUP BY {self.group_by}")
        if self.order_by:
            parts.append(f"ORDER BY {self.order_by}")
        if self.limit is not None:
            parts.append("LIMIT {limit:UInt64}")
            return "\n".join(parts), {**self.params, "limit": self.limit}
        return "\n".join(parts), dict(self.params)


def select(table: str, tenant_id: str, columns: list[str] | tuple[str, ...]) -> Select:
    """A SELECT on ``table`` restricted to one tenant."""
    if not tenant_id:
        raise ValueError("a tenant id is required")
    return Select(table, tuple(columns)).filter("tenant_id = {tenant_id:String}", tenant_id=tenant_id)


def time_range(query: Select, column: str, start_ns: int, end_ns: int) -> Select:
    """``start_ns <= column < end_ns``."""
    return query.filter(
        f"{column} >= fromUnixTimestamp64Nano({{start_ns:Int64}}, 'UTC') "
        f"AND {column} < fromUnixTimestamp64Nano({{end_ns:Int64}}, 'UTC')",
        start_ns=int(start_ns),
        end_ns=int(end_ns),
    )


FIRST_WINDOW_NS = 60 * 1_000_000_000
WINDOW_GROWTH = 4


def newest_first_windows(start_ns: int, end_ns: int) -> list[tuple[int, int]]:
    """``[start_ns, end_ns)`` cut into windows from its end back, ``FIRST_WINDOW_NS`` long and each
    ``WINDOW_GROWTH`` times the one before: trace search asks them in turn and stops once it has enough
    traces (grouping a whole 6-hour range by trace to keep 100 was most of its time). Log search gains
    nothing from them: one window costs what the whole range does (measured), so it reads the range once."""
    cuts = []
    end, width = end_ns, FIRST_WINDOW_NS
    while end > start_ns:
        begin = max(start_ns, end - width)
        cuts.append((begin, end))
        end, width = begin, width * WINDOW_GROWTH
    return cuts


def minute_range(query: Select, column: str, start_ns: int, end_ns: int) -> Select:
    """The minutes that overlap ``[start_ns, end_ns)`` (aggregates are kept per minute or hour)."""
    return query.filter(
        f"{column} >= toStartOfMinute(fromUnixTimestamp64Nano({{start_ns:Int64}}, 'UTC')) "
        f"AND {column} < fromUnixTimestamp64Nano({{end_ns:Int64}}, 'UTC')",
        start_ns=int(start_ns),
        end_ns=int(end_ns),
    )


def hour_range(query: Select, column: str, start_ns: int, end_ns: int) -> Select:
    """The hours that overlap ``[start_ns, end_ns)``."""
    return query.filter(
        f"{column} >= toStartOfHour(fromUnixTimestamp64Nano({{start_ns:Int64}}, 'UTC')) "
        f"AND {column} < fromUnixTimestamp64Nano({{end_ns:Int64}}, 'UTC')",
        start_ns=int(start_ns),
        end_ns=int(end_ns),
    )


def ns(column: str) -> str:
    """A DateTime64(9) column as a decimal nanosecond string."""
    return f"toString(toUnixTimestamp64Nano({column}))"


def b64_map(column: str, alias: str | None = None) -> str:
    """A map of serialized AnyValues, values base64-encoded for transport, as ``<column>_b64``.

    Aliases never reuse a column name: ClickHouse would resolve that name in WHERE to the alias.
    """
    return (
        f"mapApply((k, v) -> (k, base64Encode(v)), {column}) AS {alias or column.replace('.', '_') + '_b64'}"
    )


def b64_maps(column: str, alias: str) -> str:
    """An array of serialized-AnyValue maps (Nested attributes), base64-encoded for transport."""
    return f"arrayMap(m -> mapApply((k, v) -> (k, base64Encode(v)), m), {column}) AS {alias}"


ATTRIBUTE_COLUMNS = (
    "attributes",
    b64_map("attributes_other"),
    "dropped_attributes_count",
)
RESOURCE_SCOPE_COLUMNS = (
    "resource_attributes",
    b64_map("resource_attributes_other"),
    "resource_dropped_attributes_count",
    "resource_schema_url",
    "scope_name",
    "scope_version",
    b64_map("scope_attributes"),
    "scope_dropped_attributes_count",
    "scope_schema_url",
    "service_name",
)
