"""Live tail: log records inserted since the last look, in insert order.

``record_id`` is ``generateSnowflakeID()`` taken at insert: its top bits are the insert time in Unix
milliseconds, so "inserted after X" is ``record_id > X`` even for records whose own timestamps are old.
Two inserts may commit out of id order (concurrent batches), so each poll looks ``LAG_MS`` back and skips
the ids it already returned. Only records stamped within ``WINDOW_NS`` of now are read: the time bound lets
the primary key skip every older granule, which keeps one poll cheap whatever the table holds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ollystack.clickhouse import get_backend
from ollystack.clickhouse.queries import select
from ollystack.telemetry.logs import LOG_COLUMNS, LogQuery, log_filters, log_json

SNOWFLAKE_TIME_SHIFT = 22
LAG_MS = 2_000
WINDOW_NS = 15 * 60 * 1_000_000_000
FUTURE_NS = 5 * 60 * 1_000_000_000  # clocks of senders run ahead a little
MAX_RECORDS = 500


@dataclass(frozen=True)
class TailFilter:
    service: str | None = None
    severity_min: int | None = None
    text: str | None = None


def snowflake_at(time_ms: int) -> int:
    """The smallest record id the engine gives at ``time_ms`` (Unix milliseconds)."""
    return time_ms << SNOWFLAKE_TIME_SHIFT


def snowflake_ms(record_id: int) -> int:
    return record_id >> SNOWFLAKE_TIME_SHIFT


@dataclass
class TailCursor:
    """Where a tail stands: the newest id it returned, and the ids of the last ``LAG_MS`` it returned."""

    last_id: int
    seen: set[int] = field(default_factory=set)

    @classmethod
    def now(cls) -> TailCursor:
        """Records inserted from now on (and in the lag before: they may still be committing)."""
        return cls(snowflake_at(time.time_ns() // 1_000_000))

    def floor(self) -> int:
        return max(0, self.last_id - snowflake_at(LAG_MS))

    def advance(self, ids: list[int]) -> None:
        if ids:
            self.last_id = max(self.last_id, *ids)
        floor = self.floor()
        self.seen = {i for i in self.seen | set(ids) if i > floor}


def poll(tenant_id: str, tail: TailFilter, cursor: TailCursor, now_ns: int | None = None) -> list[dict]:
    """Records matching ``tail`` inserted after ``cursor`` (oldest insert first, at most ``MAX_RECORDS``),
    as /api/v1/logs returns them; ``cursor`` moves past them."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    query = LogQuery(
        start_ns=now_ns - WINDOW_NS,
        end_ns=now_ns + FUTURE_NS,
        service=tail.service,
        severity_min=tail.severity_min,
        text=tail.text,
    )
    q = log_filters(select("logs", tenant_id, LOG_COLUMNS), query)
    q = q.filter("record_id > {after_id:UInt64}", after_id=cursor.floor())
    sql, params = q.ordered("record_id").limited(MAX_RECORDS + len(cursor.seen)).sql()
    rows = [r for r in get_backend().query(sql, params).as_dicts() if r["record_id"] not in cursor.seen]
    rows = rows[:MAX_RECORDS]
    cursor.advance([int(r["record_id"]) for r in rows])
    return [log_json(r) for r in rows]
