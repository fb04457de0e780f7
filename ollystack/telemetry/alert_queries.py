"""What alert rules are evaluated on: RED figures, matching log records and trailing history, for many rules
in few statements.

A rule's window is the ``window_seconds`` seconds that end with the second being evaluated (that second
included), so an error burst counts as soon as its insert commits. RED figures come from
``service_metrics_1s``, history for anomaly rules from ``service_metrics_1m``, log matches from the raw
``logs`` table (its sort key starts with the tenant, and whole words use its token index).

Each reader exists twice: for one tenant (``tenant_id`` first, like every read helper) and for many tenants
at once (``*_of_tenants``, rules keyed by tenant id), which is what the evaluator runs every second: all RED
rules of all tenants in one statement, joined to the view on (tenant, service) with each rule's own window,
and the log rules in a few statements. Either way every table is read under a tenant condition, and a rule
only meets rows of the tenant it belongs to. Results hold only the rules that have data in their window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ollystack.clickhouse import get_backend
from ollystack.clickhouse.views import DIGEST_FUNCTION
from ollystack.telemetry.logs import text_condition

NS = 1_000_000_000
HISTORY_MINUTES = 60
MIN_HISTORY_SAMPLES = 3
LOG_RULES_PER_STATEMENT = 200
FIGURES = ("error_rate", "request_rate", "latency")
_MERGE = DIGEST_FUNCTION + "MergeIf"  # its levels are bound as parameters


@dataclass(frozen=True)
class RedRule:
    """A rule on a service's RED figure. ``operation`` empty: the requests entering the service (entry
    spans, as the service overview counts them); otherwise every span of that operation."""

    rule_id: int
    service: str
    operation: str = ""
    figure: str = "error_rate"  # one of FIGURES
    quantile: float = 0.95  # latency rules
    window_seconds: int = 60


@dataclass(frozen=True)
class RedWindow:
    """A rule's RED figures over its window (weights summed: estimates of what was sent)."""

    rule_id: int
    service: str
    requests: float
    errors: float
    latency_ms: float | None  # the rule's quantile (latency rules only)
    last_seen_ns: int  # start of the last second with spans

    def value(self, rule: RedRule) -> float | None:
        return red_value(rule, self)


@dataclass(frozen=True)
class History:
    """A figure's per-minute values over the hour before a rule's window."""

    rule_id: int
    service: str
    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values) if self.values else 0.0

    @property
    def stddev(self) -> float:
        if not self.values:
            return 0.0
        mean = self.mean
        return math.sqrt(sum((v - mean) ** 2 for v in self.values) / len(self.values))

    def z_score(self, value: float) -> float:
        """As the metric anomaly view scores: the standard deviation floored at 1 % of the mean (a jump in
        a perfectly steady figure stands out), 0 with fewer than three minutes of history."""
        if len(self.values) < MIN_HISTORY_SAMPLES:
            return 0.0
        return (value - self.mean) / max(self.stddev, abs(self.mean) * 0.01, 1e-9)


@dataclass(frozen=True)
class LogRule:
    """A rule on log records: every word of ``text`` as a whole word in the body (as log search finds
    them; empty: every record), severity number at least ``min_severity``."""

    rule_id: int
    text: str = ""
    min_severity: int = 0
    window_seconds: int = 60


@dataclass(frozen=True)
class LogWindow:
    rule_id: int
    records: int
    last_seen_ns: int
    example: str  # the body of the newest matching record


def red_value(rule: RedRule, window: RedWindow | None) -> float | None:
    """The rule's figure: error rate (0 without requests), requests per second, latency in milliseconds
    (None without requests)."""
    if rule.figure == "request_rate":
        return (window.requests if window else 0.0) / rule.window_seconds
    if rule.figure == "error_rate":
        return window.errors / window.requests if window and window.requests else 0.0
    if rule.figure == "latency":
        return window.latency_ms if window else None
    raise ValueError(f"unknown RED figure {rule.figure!r} of rule {rule.rule_id}: use one of {FIGURES}")


# --- building blocks ---------------------------------------------------------------------------------------


def _check(tenant_id: str) -> str:
    if not tenant_id:
        raise ValueError("a tenant id is required")
    return tenant_id


def _tenant_condition(column: str, tenants: Sequence[str] | str) -> tuple[str, dict[str, Any]]:
    """One tenant: the builder's condition; several: a bound list."""
    if isinstance(tenants, str):
        return f"{column} = {{tenant_id:String}}", {"tenant_id": _check(tenants)}
    return f"{column} IN {{tenant_ids:Array(String)}}", {"tenant_ids": [_check(t) for t in tenants]}


def _rules_relation(columns: Mapping[str, tuple[str, list[Any]]]) -> tuple[str, dict[str, Any]]:
    """The rules as a relation: bound arrays zipped and joined into rows (column → (type, values))."""
    names = list(columns)
    zipped = ", ".join(f"{{rule_{n}:Array({columns[n][0]})}}" for n in names)
    fields = ", ".join(f"r.{i} AS {n}" for i, n in enumerate(names, 1))
    sql = f"SELECT {fields} FROM (SELECT arrayJoin(arrayZip({zipped})) AS r)"
    return sql, {f"rule_{n}": list(values) for n, (_, values) in columns.items()}


def _quantile_levels(rules: Sequence[RedRule]) -> list[float]:
    return sorted({float(r.quantile) for r in rules if r.figure == "latency"})


def _digest_merge(levels: list[float]) -> tuple[str, dict[str, float]]:
    """The merged latency histogram of latency rules at their quantiles (levels bound as parameters)."""
    if not levels:
        return "CAST([], 'Array(Float64)')", {}
    names = [f"level_{i}" for i in range(len(levels))]
    args = ", ".join(f"{{{n}:Float64}}" for n in names)
    return f"{_MERGE}({args})(m.duration, r.latency = 1)", dict(zip(names, levels, strict=True))


def _flatten(rules: Mapping[str, Sequence[Any]]) -> list[tuple[str, Any]]:
    return [(tenant, rule) for tenant, own in rules.items() for rule in own]


def _second(now_ns: int) -> int:
    return int(now_ns) // NS


def _red_relation(pairs: Sequence[tuple[str, RedRule]], levels: list[float]) -> tuple[str, dict[str, Any]]:
    return _rules_relation(
        {
            "rule_id": ("UInt64", [r.rule_id for _, r in pairs]),
            "tenant_id": ("String", [t for t, _ in pairs]),
            "service": ("String", [r.service for _, r in pairs]),
            "operation": ("String", [r.operation for _, r in pairs]),
            "window": ("UInt32", [int(r.window_seconds) for _, r in pairs]),
            "latency": ("UInt8", [int(r.figure == "latency") for _, r in pairs]),
            "level": ("UInt16", [levels.index(r.quantile) if r.figure == "latency" else 0 for _, r in pairs]),
        }
    )


_MATCHES = "m.service_name = r.service AND if(r.operation = '', m.entry = 1, m.operation = r.operation)"


# --- RED windows -------------------------------------------------------------------------------------------


def _red_windows(
    tenants: Sequence[str] | str, pairs: Sequence[tuple[str, RedRule]], now_ns: int
) -> list[RedWindow]:
    if not pairs:
        return []
    levels = _quantile_levels([r for _, r in pairs])
    relation, params = _red_relation(pairs, levels)
    merge, level_params = _digest_merge(levels)
    condition, tenant_params = _tenant_condition("m.tenant_id", tenants)
    now_s = _second(now_ns)
    longest = max(int(r.window_seconds) for _, r in pairs)
    sql = f"""SELECT r.rule_id AS rule_id, any(m.service_name) AS service, sum(m.requests) AS requests,
       sum(m.errors) AS errors, {merge} AS levels, any(r.level) AS level,
       toUnixTimestamp(max(m.second)) AS last_second
FROM service_metrics_1s AS m
INNER JOIN ({relation}) AS r ON m.tenant_id = r.tenant_id AND m.service_name = r.service
WHERE ({condition})
  AND m.second > toDateTime({{now_s:Int64}} - {{longest:Int64}}, 'UTC')
  AND m.second <= toDateTime({{now_s:Int64}}, 'UTC')
  AND toUnixTimestamp(m.second) > {{now_s:Int64}} - r.window
  AND {_MATCHES}
GROUP BY rule_id"""
    params |= level_params | tenant_params | {"now_s": now_s, "longest": longest}
    rules = {r.rule_id: r for _, r in pairs}
    out = []
    for rule_id, service, requests, errors, quantiles, level, last_second in (
        get_backend().query(sql, params).rows
    ):
        rule = rules[int(rule_id)]
        latency = None
        if rule.figure == "latency" and float(requests) > 0:
            latency = float(quantiles[int(level)]) / 1e6
        out.append(
            RedWindow(int(rule_id), service, float(requests), float(errors), latency, int(last_second) * NS)
        )
    return out


def red_windows(tenant_id: str, rules: Sequence[RedRule], now_ns: int) -> list[RedWindow]:
    """RED figures of one tenant's rules over their windows ending with the second of ``now_ns``."""
    return _red_windows(_check(tenant_id), [(tenant_id, r) for r in rules], now_ns)


def red_windows_of_tenants(rules: Mapping[str, Sequence[RedRule]], now_ns: int) -> list[RedWindow]:
    """:func:`red_windows` for the rules of many tenants (tenant id → rules), in one statement."""
    pairs = _flatten(rules)
    return _red_windows(sorted({t for t, _ in pairs}), pairs, now_ns)


# --- RED history (anomaly rules) ---------------------------------------------------------------------------


def _minute_value(rule: RedRule, requests: float, errors: float, quantile_ns: float) -> float | None:
    if rule.figure == "request_rate":
        return requests / 60
    if not requests:
        return None
    return errors / requests if rule.figure == "error_rate" else quantile_ns / 1e6


def _red_history(
    tenants: Sequence[str] | str, pairs: Sequence[tuple[str, RedRule]], now_ns: int
) -> list[History]:
    """Per-minute values of the minutes that end before the rule's window starts, an hour of them."""
    if not pairs:
        return []
    levels = _quantile_levels([r for _, r in pairs])
    relation, params = _red_relation(pairs, levels)
    merge, level_params = _digest_merge(levels)
    condition, tenant_params = _tenant_condition("m.tenant_id", tenants)
    now_s = _second(now_ns)
    # the last whole minute before each rule's window: its end (exclusive), in seconds
    ends = {r.rule_id: (now_s + 1 - int(r.window_seconds)) // 60 * 60 for _, r in pairs}
    sql = f"""SELECT r.rule_id AS rule_id, toUnixTimestamp(m.minute) AS minute,
       any(m.service_name) AS service, sum(m.requests) AS requests, sum(m.errors) AS errors,
       {merge} AS levels, any(r.level) AS level
FROM service_metrics_1m AS m
INNER JOIN ({relation}) AS r ON m.tenant_id = r.tenant_id AND m.service_name = r.service
WHERE ({condition})
  AND m.minute >= toDateTime({{start_s:Int64}}, 'UTC')
  AND m.minute < toDateTime({{end_s:Int64}}, 'UTC')
  AND toUnixTimestamp(m.minute) < intDiv({{now_s:Int64}} + 1 - r.window, 60) * 60
  AND toUnixTimestamp(m.minute) >= intDiv({{now_s:Int64}} + 1 - r.window, 60) * 60 - {HISTORY_MINUTES * 60}
  AND {_MATCHES}
GROUP BY rule_id, minute
ORDER BY rule_id, minute"""
    params |= level_params | tenant_params
    params |= {
        "now_s": now_s,
        "start_s": min(ends.values()) - HISTORY_MINUTES * 60,
        "end_s": max(ends.values()),
    }
    rules = {r.rule_id: r for _, r in pairs}
    minutes: dict[int, dict[int, float]] = {}
    services: dict[int, str] = {}
    for rule_id, minute, service, requests, errors, quantiles, level in get_backend().query(sql, params).rows:
        rule = rules[int(rule_id)]
        q = float(quantiles[int(level)]) if rule.figure == "latency" and quantiles else 0.0
        value = _minute_value(rule, float(requests), float(errors), q)
        services[rule.rule_id] = service
        if value is not None:
            minutes.setdefault(rule.rule_id, {})[int(minute)] = value
    out = []
    for rule_id, found in minutes.items():
        rule = rules[rule_id]
        if rule.figure == "request_rate":
            # a minute without spans had no requests: zeros from the first minute seen on
            found = {m: found.get(m, 0.0) for m in range(min(found), ends[rule_id], 60)}
        out.append(History(rule_id, services[rule_id], tuple(found[m] for m in sorted(found))))
    return out


def red_history(tenant_id: str, rules: Sequence[RedRule], now_ns: int) -> list[History]:
    """Per-minute values of each rule's figure over the hour before its window (anomaly rules)."""
    return _red_history(_check(tenant_id), [(tenant_id, r) for r in rules], now_ns)


def red_history_of_tenants(rules: Mapping[str, Sequence[RedRule]], now_ns: int) -> list[History]:
    """:func:`red_history` for the rules of many tenants, in one statement."""
    pairs = _flatten(rules)
    return _red_history(sorted({t for t, _ in pairs}), pairs, now_ns)


# --- log windows -------------------------------------------------------------------------------------------


def _log_condition(n: int, tenant_id: str | None, rule: LogRule, end_ns: int) -> tuple[str, dict[str, Any]]:
    """Rule ``n``'s records: its tenant (``None``: the statement's only one), window, severity and words."""
    parts = [f"timestamp >= fromUnixTimestamp64Nano({{start_{n}:Int64}}, 'UTC')"]
    params: dict[str, Any] = {f"start_{n}": end_ns - int(rule.window_seconds) * NS}
    if tenant_id is not None:
        parts.insert(0, f"tenant_id = {{tenant_{n}:String}}")
        params[f"tenant_{n}"] = tenant_id
    if rule.min_severity:
        parts.append(f"severity_number >= {{severity_{n}:Int32}}")
        params[f"severity_{n}"] = int(rule.min_severity)
    if rule.text:
        words, word_params = text_condition(rule.text, prefix=f"r{n}_")
        parts.append(words)
        params |= word_params
    return " AND ".join(f"({p})" for p in parts), params


def _log_windows(
    tenants: Sequence[str] | str, pairs: Sequence[tuple[str, LogRule]], now_ns: int
) -> list[LogWindow]:
    """One scan of the logs per ``LOG_RULES_PER_STATEMENT`` rules: the records of every rule's tenant in
    the longest window, each rule counted by its own condition (-If aggregates); the rules' conditions
    OR-ed in the WHERE clause let the token index skip granules that hold none of the words."""
    out = []
    end_ns = (_second(now_ns) + 1) * NS
    shared = isinstance(tenants, str)
    for start in range(0, len(pairs), LOG_RULES_PER_STATEMENT):
        chunk = pairs[start : start + LOG_RULES_PER_STATEMENT]
        longest = max(int(rule.window_seconds) for _, rule in chunk)
        condition, params = _tenant_condition(
            "tenant_id", tenants if shared else sorted({t for t, _ in chunk})
        )
        columns, matches = [], []
        for n, (tenant, rule) in enumerate(chunk):
            match, match_params = _log_condition(n, None if shared else tenant, rule, end_ns)
            params |= match_params
            matches.append(match)
            columns.append(
                f"countIf({match}), toUnixTimestamp64Nano(maxIf(timestamp, {match})),"
                f" argMaxIf(body, timestamp, {match})"
            )
        sql = f"""SELECT {", ".join(columns)}
FROM logs
WHERE ({condition})
  AND timestamp >= fromUnixTimestamp64Nano({{start_ns:Int64}}, 'UTC')
  AND timestamp < fromUnixTimestamp64Nano({{end_ns:Int64}}, 'UTC')
  AND ({" OR ".join(matches)})"""
        params |= {"start_ns": end_ns - longest * NS, "end_ns": end_ns}
        rows = get_backend().query(sql, params).rows
        if not rows:
            continue
        row = rows[0]
        for n, (_, rule) in enumerate(chunk):
            records, last_ns, example = row[3 * n : 3 * n + 3]
            if int(records) > 0:
                out.append(LogWindow(rule.rule_id, int(records), int(last_ns), example))
    return out


def log_windows(tenant_id: str, rules: Sequence[LogRule], now_ns: int) -> list[LogWindow]:
    """Log records matching each rule over its window ending with the second of ``now_ns``."""
    return _log_windows(_check(tenant_id), [(tenant_id, r) for r in rules], now_ns)


def log_windows_of_tenants(rules: Mapping[str, Sequence[LogRule]], now_ns: int) -> list[LogWindow]:
    """:func:`log_windows` for the rules of many tenants, ``LOG_RULES_PER_STATEMENT`` rules a statement
    (one scan of the tenants' logs, each rule counted by its own condition)."""
    pairs = [(_check(t), r) for t, r in _flatten(rules)]
    return _log_windows(sorted({t for t, _ in pairs}), pairs, now_ns)
