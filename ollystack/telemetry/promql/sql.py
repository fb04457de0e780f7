"""ClickHouse SQL for PromQL selectors over ``metric_points``.

Every statement starts from :func:`ollystack.clickhouse.queries.select` (the tenant filter) and binds every
value as a parameter. The heavy work stays in ClickHouse:

- one OTel data point becomes the Prometheus samples it stands for (``ARRAY JOIN``: a histogram point is one
  ``_bucket`` sample per bound plus ``_sum`` and ``_count``), with Prometheus labels built from the attribute
  maps and label matchers applied to them;
- an instant selector is answered per evaluation step: a window function gives each sample the time of the
  next one, and the sample is repeated for the steps where it is the latest within the lookback, so exactly
  one value per (series, step) comes back;
- a range selector under a function (``rate(x[5m])``) is aggregated per (series, step): each sample joins
  the steps whose window holds it, and first/last/count/counter-reset corrections come back per step, from
  which Python does only the final arithmetic (extrapolation) on arrays.

Times are integer milliseconds, like Prometheus's; the evaluation times are ``start + i * step``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ollystack.clickhouse.queries import select
from ollystack.telemetry.promql.names import BUCKET, COUNT, QUANTILE, SUM, VALUE, label_key_sql

# Prometheus label matcher operators.
EQ, NE, RE, NRE = "=", "!=", "=~", "!~"
_FAR_FUTURE_MS = 4_000_000_000_000_000  # "no next sample" (far beyond any real time, no overflow)

# A non-string attribute is stored as its serialized OTLP AnyValue; labels need its text: int64 (a varint
# after tag 0x18), bool (0x10) and double (0x21, 8 bytes little-endian). Other kinds become ''.
_ANYVALUE_TEXT = (
    "multiIf("
    "substring(v, 1, 1) = '\\x18', toString(toInt64(arraySum(arrayMap(i -> bitShiftLeft("
    "toUInt64(bitAnd(reinterpretAsUInt8(substring(v, i + 2, 1)), 127)), 7 * i), "
    "range(toUInt64(length(v) - 1)))))), "
    "substring(v, 1, 1) = '\\x10', if(length(v) > 1 AND substring(v, 2, 1) != '\\x00', 'true', 'false'), "
    "substring(v, 1, 1) = '\\x21', toString(reinterpretAsFloat64(substring(v, 2, 8))), "
    "'')"
)
_JOB = (
    "if(resource_attributes['service.namespace'] != '' AND service_name != '', "
    "concat(resource_attributes['service.namespace'], '/', service_name), service_name)"
)
# Labels of a data point before the kind-specific ones (le, quantile); job/instance win over attributes
# of the same name (the first of duplicate keys is the one a lookup finds).
BASE_LABELS = (
    f"mapConcat(map('job', {_JOB}, 'instance', resource_attributes['service.instance.id']), "
    f"mapApply((k, v) -> ({label_key_sql('k')}, v), attributes), "
    f"mapApply((k, v) -> ({label_key_sql('k')}, {_ANYVALUE_TEXT}), attributes_other))"
)
# (kind, extra label, its value, sample value) for every Prometheus sample one data point stands for, by kind;
# a statement carries only the kinds its selector reads (shorter SQL plans faster).
_EXPANSIONS = {
    VALUE: f"if(has({{value_names:Array(String)}}, metric_name), [('{VALUE}', '', '', value)], [])",
    BUCKET: (
        f"if(has({{bucket_names:Array(String)}}, metric_name) "
        "AND length(bucket_counts) = length(explicit_bounds) + 1, "
        f"arrayMap((b, c) -> ('{BUCKET}', 'le', b, toFloat64(c)), "
        "arrayPushBack(arrayMap(x -> toString(x), explicit_bounds), '+Inf'), arrayCumSum(bucket_counts)), [])"
    ),
    SUM: (
        f"if(has({{sum_names:Array(String)}}, metric_name) AND sum IS NOT NULL, "
        f"[('{SUM}', '', '', assumeNotNull(sum))], [])"
    ),
    COUNT: (
        f"if(has({{count_names:Array(String)}}, metric_name), [('{COUNT}', '', '', toFloat64(count))], [])"
    ),
    QUANTILE: (
        f"if(has({{quantile_names:Array(String)}}, metric_name), "
        f"arrayMap((q, x) -> ('{QUANTILE}', 'quantile', toString(q), x), "
        "quantiles.quantile, quantiles.value), [])"
    ),
}
_EXTRA_LABEL_KINDS = (BUCKET, QUANTILE)


def _labels_sql(extra_label: bool) -> str:
    """The final label map: without empty values, sorted (so that equal label sets group together)."""
    labels = (
        "if(e.2 = '', base_labels, mapUpdate(base_labels, map(e.2, e.3)))" if extra_label else "base_labels"
    )
    return f"mapSort(mapFilter((k, v) -> v != '', {labels}))"


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str


@dataclass(frozen=True)
class SeriesSelection:
    """Which OTel metrics to read, as which kinds of series, and the matchers on their other labels."""

    kinds: dict[str, frozenset[str]]  # kind (VALUE, BUCKET, ...) -> OTel metric names
    matchers: tuple[Matcher, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def metric_names(self) -> list[str]:
        return sorted(set().union(*self.kinds.values())) if self.kinds else []

    def params(self) -> dict[str, Any]:
        return {f"{kind}_names": sorted(names) for kind, names in self.kinds.items() if names}


def _matcher_sql(matchers: Iterable[Matcher]) -> tuple[list[str], dict[str, Any]]:
    conditions: list[str] = []
    params: dict[str, Any] = {}
    for n, m in enumerate(matchers):
        params[f"mn{n}"] = m.name
        params[f"mv{n}"] = m.value if m.op in (EQ, NE) else f"^(?:{m.value})$"
        value = f"labels[{{mn{n}:String}}]"
        conditions.append(
            {
                EQ: f"{value} = {{mv{n}:String}}",
                NE: f"{value} != {{mv{n}:String}}",
                RE: f"match({value}, {{mv{n}:String}})",
                NRE: f"NOT match({value}, {{mv{n}:String}})",
            }[m.op]
        )
    return conditions, params


def _compose(inner: Any, outer: str) -> tuple[str, dict[str, Any]]:
    sql, params = inner.sql()
    return outer.replace("{SAMPLES}", sql), params


@dataclass(frozen=True)
class Steps:
    """Evaluation times ``start + i * step`` for ``i < count`` (ms), already shifted by any offset."""

    start: int
    step: int
    count: int

    def params(self) -> dict[str, Any]:
        return {"s0": self.start, "step": max(1, self.step), "nsteps": self.count}


# i_lo: the first step at or after the sample; i_hi: the last step whose window still holds it.
_FIRST_STEP = "if(t <= {s0:Int64}, 0, intDiv(t - {s0:Int64} + {step:Int64} - 1, {step:Int64}))"


# Aggregates per (series, step) available to range functions; each names the columns it adds.
RANGE_AGGREGATES: dict[str, str] = {
    "n": "count() AS n",
    "t0": "min(t) AS t0",
    "v0": "argMin(v, t) AS v0",
    "t1": "max(t) AS t1",
    "v1": "argMax(v, t) AS v1",
    # counter resets inside the window: the first sample's drop against its predecessor does not count
    "corr": "sum(r) - argMin(r, t) AS corr",
    "pv1": "argMax(pv, t) AS pv1",
    "pt1": "argMax(pt, t) AS pt1",
    "sum": "sum(v) AS sum",
    "min": "min(v) AS min",
    "max": "max(v) AS max",
    "var": "varPop(v) AS var",
    "changes": "sum(ch) - argMin(ch, t) AS changes",
    "resets": "sum(r > 0) - argMin(r > 0, t) AS resets",
    "quantile": "quantileExactInclusive({q:Float64})(v) AS quantile",
    # least squares over (t - s0) seconds: for deriv and predict_linear
    "sx": "sum((t - {s0:Int64}) / 1000) AS sx",
    "sxx": "sum(((t - {s0:Int64}) / 1000) * ((t - {s0:Int64}) / 1000)) AS sxx",
    "sxy": "sum(((t - {s0:Int64}) / 1000) * v) AS sxy",
}


@dataclass(frozen=True)
class Statements:
    """The statements of one tenant's PromQL evaluation (each starts from the tenant-filtered select)."""

    tenant_id: str

    def samples(self, selection: SeriesSelection, lo_ms: int | None, hi_ms: int | None) -> Any:
        """Prometheus samples ``(m, k, labels, t, v)`` with ``lo_ms <= t <= hi_ms`` (a Select)."""
        kinds = [kind for kind in _EXPANSIONS if selection.kinds.get(kind)]
        if kinds == [VALUE]:  # gauges and sums only: one sample per data point, no ARRAY JOIN
            table, kind, value = "metric_points", f"'{VALUE}'", "value"
        else:
            expansion = f"arrayConcat({', '.join(_EXPANSIONS[k] for k in kinds)})"
            table, kind, value = f"metric_points ARRAY JOIN {expansion} AS e", "e.1", "e.4"
        q = select(
            table,
            self.tenant_id,
            [
                "metric_name AS m",
                f"{kind} AS k",
                f"{BASE_LABELS} AS base_labels",
                f"{_labels_sql(any(k in _EXTRA_LABEL_KINDS for k in kinds))} AS labels",
                "intDiv(toUnixTimestamp64Nano(timestamp), 1000000) AS t",
                f"{value} AS v",
            ],
        )
        q = q.filter("metric_name IN {metric_names:Array(String)}", metric_names=selection.metric_names)
        q = q.filter("type IN ('gauge', 'sum', 'histogram', 'summary')")
        q = q.filter("aggregation_temporality != 1")  # delta points are not Prometheus samples
        q = q.filter("bitAnd(flags, 1) = 0")  # "no recorded value" points
        if lo_ms is not None:
            q = q.filter("timestamp >= fromUnixTimestamp64Milli({lo_ms:Int64}, 'UTC')", lo_ms=int(lo_ms))
        if hi_ms is not None:
            q = q.filter("timestamp < fromUnixTimestamp64Milli({hi_ms:Int64}, 'UTC')", hi_ms=int(hi_ms) + 1)
        conditions, mparams = _matcher_sql(selection.matchers)
        for condition in conditions:
            q = q.filter(condition, **{k: v for k, v in mparams.items() if "{" + k + ":" in condition})
        if kinds != [VALUE]:
            q = replace(q, params={**q.params, **selection.params()})
        return q

    def instant(
        self, selection: SeriesSelection, steps: Steps, lookback_ms: int
    ) -> tuple[str, dict[str, Any]]:
        """Per series: the steps it has a value at and the values (latest sample within the lookback)."""
        last = steps.start + (steps.count - 1) * steps.step
        inner = self.samples(selection, steps.start - lookback_ms, last)
        sql, params = _compose(
            inner,
            f"""SELECT m, k, labels, groupArray(i) AS steps, groupArray(v) AS vals
    FROM (
        SELECT m, k, labels, t, v,
            leadInFrame(t, 1, toInt64({_FAR_FUTURE_MS})) OVER (
                PARTITION BY m, k, labels ORDER BY t ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING) AS next_t
        FROM ({{SAMPLES}})
    )
    ARRAY JOIN range(
        toInt64({_FIRST_STEP}),
        toInt64(greatest(least(
            intDiv(t + {{lookback:Int64}} - {{s0:Int64}}, {{step:Int64}}),
            if(next_t <= {{s0:Int64}}, -1,
                intDiv(next_t - {{s0:Int64}} + {{step:Int64}} - 1, {{step:Int64}}) - 1),
            {{nsteps:Int64}} - 1) + 1, 0))) AS i
    GROUP BY m, k, labels""",
        )
        return sql, {**params, **steps.params(), "lookback": int(lookback_ms)}

    def windows(
        self,
        selection: SeriesSelection,
        steps: Steps,
        range_ms: int,
        aggregates: Sequence[str],
        extra: dict[str, Any] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """Per series: for every step with samples in ``[t - range, t]``, the named aggregates (as arrays)."""
        last = steps.start + (steps.count - 1) * steps.step
        inner = self.samples(selection, steps.start - range_ms, last)
        columns = ["n", *[a for a in aggregates if a != "n"]]
        per_step = ", ".join(RANGE_AGGREGATES[a] for a in columns)
        arrays = ", ".join(f"groupArray({a}) AS {a}_a" for a in columns)
        sql, params = _compose(
            inner,
            f"""SELECT m, k, labels, groupArray(i) AS steps, {arrays}
    FROM (
        SELECT m, k, labels, i, {per_step}
        FROM (
            SELECT m, k, labels, t, v, pv, pt,
                if(pt != 0 AND v < pv, pv, 0) AS r,
                if(pt != 0 AND NOT (v = pv OR (isNaN(v) AND isNaN(pv))), 1, 0) AS ch
            FROM (
                SELECT m, k, labels, t, v,
                    lagInFrame(v, 1, nan) OVER w AS pv,
                    lagInFrame(t, 1, toInt64(0)) OVER w AS pt
                FROM ({{SAMPLES}})
                WINDOW w AS (PARTITION BY m, k, labels ORDER BY t ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
            )
        )
        ARRAY JOIN range(
            toInt64({_FIRST_STEP}),
            toInt64(greatest(least(intDiv(t + {{range:Int64}} - {{s0:Int64}}, {{step:Int64}}),
                {{nsteps:Int64}} - 1) + 1, 0))) AS i
        GROUP BY m, k, labels, i
    )
    GROUP BY m, k, labels""",
        )
        return sql, {**params, **steps.params(), "range": int(range_ms), **(extra or {})}

    def raw(
        self, selection: SeriesSelection, lo_ms: int, hi_ms: int, limit: int
    ) -> tuple[str, dict[str, Any]]:
        """Per series: every sample in ``[lo, hi]`` (the matrix an instant query of ``x[5m]`` returns)."""
        inner = self.samples(selection, lo_ms, hi_ms)
        sql, params = _compose(
            inner,
            """SELECT m, k, labels, arrayMap(p -> p.1, points) AS ts, arrayMap(p -> p.2, points) AS vs
    FROM (
        SELECT m, k, labels, arraySort(groupArray((t, v))) AS points
        FROM ({SAMPLES})
        GROUP BY m, k, labels
    )
    WHERE length(points) <= {max_points:UInt64}""",
        )
        return sql, {**params, "max_points": int(limit)}

    def series(
        self, selection: SeriesSelection, lo_ms: int | None, hi_ms: int | None, limit: int
    ) -> tuple[str, dict[str, Any]]:
        """The distinct series of a selector with samples in ``[lo, hi]``."""
        inner = self.samples(selection, lo_ms, hi_ms)
        sql, params = _compose(
            inner,
            """SELECT m, k, labels FROM ({SAMPLES}) GROUP BY m, k, labels ORDER BY m, k, labels
    LIMIT {series_limit:UInt64}""",
        )
        return sql, {**params, "series_limit": int(limit)}

    def catalog(self, lo_ms: int | None, hi_ms: int | None) -> tuple[str, dict[str, Any]]:
        """Every metric with data in the range: kind, unit, description, temporality, services."""
        q = select(
            "metric_points",
            self.tenant_id,
            [
                "metric_name",
                "toString(any(type)) AS kind",
                "any(metric_unit) AS unit",
                "any(metric_description) AS description",
                "max(is_monotonic) AS monotonic",
                "min(aggregation_temporality != 1) AS cumulative",
                "groupUniqArray(100)(service_name) AS services",
            ],
        )
        if lo_ms is not None:
            q = q.filter("timestamp >= fromUnixTimestamp64Milli({lo_ms:Int64}, 'UTC')", lo_ms=int(lo_ms))
        if hi_ms is not None:
            q = q.filter("timestamp < fromUnixTimestamp64Milli({hi_ms:Int64}, 'UTC')", hi_ms=int(hi_ms) + 1)
        return q.grouped("metric_name").ordered("metric_name").sql()
