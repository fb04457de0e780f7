"""PromQL evaluation: selectors and range functions in ClickHouse, the rest on the aggregated series.

An instant vector over a query's evaluation steps is a dense ``(series, steps)`` array of values plus a mask
of where a sample exists (Prometheus distinguishes "no sample" from NaN). Selectors and range functions come
back from SQL already reduced to one value per (series, step) — see :mod:`ollystack.telemetry.promql.sql` —
so what runs here (vector matching, aggregation, histogram quantiles, the extrapolation arithmetic of
``rate``) touches series x steps values with numpy, never raw samples one by one.

The semantics are Prometheus 2.x's (the version the comparison tests run against): closed intervals
``[t - range, t]`` for range selectors and ``[t - 5m, t]`` for the lookback, extrapolated ``rate``,
``increase`` and ``delta`` with counter-reset correction, ``irate`` from the last two samples.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import promql_parser as pp

from ollystack.clickhouse import get_backend
from ollystack.clickhouse.backends import QueryError
from ollystack.telemetry.promql import sql
from ollystack.telemetry.promql.errors import BadData, PromQLError, Timeout, Unsupported
from ollystack.telemetry.promql.names import EXPOSED_KINDS, Family
from ollystack.telemetry.promql.parse import datetime_ms, to_ms

Labels = dict[str, str]
NAME = "__name__"
LOOKBACK_MS = 5 * 60 * 1000
MAX_POINTS_PER_SERIES = 11_000
MAX_POINTS = 20_000_000  # series x steps held at once (Prometheus: 50 M samples)
MAX_SERIES = 200_000

_OPS = {"Equal": sql.EQ, "NotEqual": sql.NE, "Re": sql.RE, "NotRe": sql.NRE}


def _op(m: pp.Matcher) -> str:
    return _OPS[repr(m.op).rsplit(".", 1)[-1]]


# --- values ---------------------------------------------------------------------------------------------


@dataclass
class Vector:
    """An instant vector at every step: ``values[s, i]`` counts only where ``present[s, i]``."""

    labels: list[Labels]
    values: np.ndarray
    present: np.ndarray

    @staticmethod
    def empty(steps: int) -> Vector:
        return Vector([], np.empty((0, steps)), np.zeros((0, steps), dtype=bool))


@dataclass
class Scalar:
    values: np.ndarray


@dataclass
class String:
    value: str


@dataclass
class Matrix:
    """A range vector: raw samples ``(ms, value)`` per series (an instant query of ``x[5m]``)."""

    labels: list[Labels]
    points: list[list[tuple[int, float]]]


Value = Vector | Scalar | String | Matrix


# --- the evaluator ----------------------------------------------------------------------------------------


@dataclass
class Evaluation:
    """One query over the steps ``start + i * step`` (``i < count``) for one tenant."""

    tenant_id: str
    start: int
    step: int
    count: int
    families: list[Family]
    timeout: float | None = None
    lookback: int = LOOKBACK_MS
    statements: int = field(default=0)

    @property
    def times(self) -> np.ndarray:
        return self.start + self.step * np.arange(self.count, dtype=np.int64)

    @property
    def end(self) -> int:
        return self.start + (self.count - 1) * self.step

    # -- storage

    def run(self, statement: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
        text, params = statement
        settings = {"max_execution_time": max(1, math.ceil(self.timeout))} if self.timeout else None
        self.statements += 1
        try:
            return get_backend().query(text, params, settings).as_dicts()
        except QueryError as exc:
            message = str(exc)
            if "TIMEOUT_EXCEEDED" in message or "Timeout exceeded" in message:
                raise Timeout("query timed out in expression evaluation") from None
            if "re2" in message.lower() or "regexp" in message.lower():
                raise BadData(f"invalid regular expression in a label matcher: {message[:300]}") from None
            raise

    # -- selectors

    def selection(self, vs: pp.VectorSelector) -> tuple[sql.SeriesSelection, dict[tuple[str, str], str]]:
        """Which OTel metrics (and kinds of series) a selector reads, and their Prometheus names."""
        if vs.matchers.or_matchers:
            raise Unsupported("'or' between label matchers is not supported")
        name_matchers: list[sql.Matcher] = []
        others: list[sql.Matcher] = []
        if vs.name:
            name_matchers.append(sql.Matcher(NAME, sql.EQ, vs.name))
        for m in vs.matchers.matchers:
            matcher = sql.Matcher(m.name, _op(m), m.value)
            (name_matchers if m.name == NAME else others).append(matcher)
        tests = [_name_test(m) for m in name_matchers]
        kinds: dict[str, set[str]] = defaultdict(set)
        names: dict[tuple[str, str], str] = {}
        for family in self.families:
            if family.kind not in EXPOSED_KINDS:
                continue
            for prom_name, kind in family.series_names.items():
                if all(test(prom_name) for test in tests):
                    if family.delta:
                        if name_matchers:
                            raise Unsupported(
                                f"metric {family.otel_name} ({prom_name}) has delta temporality, which "
                                "PromQL cannot read; export it with cumulative temporality"
                            )
                        continue
                    kinds[kind].add(family.otel_name)
                    names[(family.otel_name, kind)] = prom_name
        selection = sql.SeriesSelection({k: frozenset(v) for k, v in kinds.items()}, tuple(others))
        return selection, names

    def _shifted(self, vs: pp.VectorSelector) -> tuple[sql.Steps, bool]:
        """The steps a selector reads at (offset and @ applied); True when @ pins them to one time."""
        offset = to_ms(vs.offset) if vs.offset is not None else 0
        at = self._at(vs.at)
        if at is not None:
            return sql.Steps(at - offset, self.step, 1), True
        return sql.Steps(self.start - offset, self.step, self.count), False

    def _at(self, at: pp.AtModifier | None) -> int | None:
        if at is None:
            return None
        if at.type == pp.AtModifierType.Start:
            return self.start
        if at.type == pp.AtModifierType.End:
            return self.end
        assert at.at is not None
        return datetime_ms(at.at)

    def _broadcast(self, vector: Vector, pinned: bool) -> Vector:
        if not pinned or self.count == 1:
            return vector
        return Vector(
            vector.labels,
            np.repeat(vector.values[:, :1], self.count, axis=1),
            np.repeat(vector.present[:, :1], self.count, axis=1),
        )

    def _check_size(self, rows: int, steps: int) -> None:
        if rows > MAX_SERIES or rows * steps > MAX_POINTS:
            raise PromQLError("query processing would load too many samples into memory in query execution")

    def selector(self, vs: pp.VectorSelector) -> Vector:
        selection, names = self.selection(vs)
        steps, pinned = self._shifted(vs)
        if not selection.metric_names:
            return Vector.empty(self.count)
        rows = self.run(sql.Statements(self.tenant_id).instant(selection, steps, self.lookback))
        self._check_size(len(rows), steps.count)
        values = np.full((len(rows), steps.count), np.nan)
        present = np.zeros((len(rows), steps.count), dtype=bool)
        labels = []
        for r, row in enumerate(rows):
            idx = np.asarray(row["steps"], dtype=np.int64)
            values[r, idx] = np.asarray(row["vals"], dtype=np.float64)
            present[r, idx] = True
            labels.append(series_labels(row, names))
        return self._broadcast(Vector(labels, values, present), pinned)

    def range_aggregates(
        self, ms: pp.MatrixSelector, aggregates: Sequence[str], extra: dict[str, Any] | None = None
    ) -> tuple[list[Labels], dict[str, np.ndarray], sql.Steps, bool]:
        """Per-step aggregates of a range selector, as dense ``(series, steps)`` arrays (NaN: none)."""
        vs = ms.vector_selector
        selection, names = self.selection(vs)
        steps, pinned = self._shifted(vs)
        columns = ["n", *aggregates]
        if not selection.metric_names:
            return [], {c: np.empty((0, steps.count)) for c in columns}, steps, pinned
        range_ms = to_ms(ms.range)
        rows = self.run(sql.Statements(self.tenant_id).windows(selection, steps, range_ms, aggregates, extra))
        self._check_size(len(rows), steps.count)
        arrays = {c: np.full((len(rows), steps.count), np.nan) for c in columns}
        labels = []
        for r, row in enumerate(rows):
            idx = np.asarray(row["steps"], dtype=np.int64)
            for c in columns:
                arrays[c][r, idx] = np.asarray(row[f"{c}_a"], dtype=np.float64)
            labels.append(series_labels(row, names))
        arrays["n"] = np.nan_to_num(arrays["n"], nan=0.0)
        return labels, arrays, steps, pinned

    def raw(self, ms: pp.MatrixSelector) -> Matrix:
        vs = ms.vector_selector
        selection, names = self.selection(vs)
        steps, _ = self._shifted(vs)
        if not selection.metric_names:
            return Matrix([], [])
        hi = steps.start
        rows = self.run(
            sql.Statements(self.tenant_id).raw(selection, hi - to_ms(ms.range), hi, MAX_POINTS_PER_SERIES)
        )
        return Matrix(
            [series_labels(row, names) for row in rows],
            [list(zip(row["ts"], row["vs"], strict=True)) for row in rows],
        )

    # -- expressions

    def eval(self, node: pp.Expr) -> Value:
        if isinstance(node, pp.NumberLiteral):
            return Scalar(np.full(self.count, node.val, dtype=np.float64))
        if isinstance(node, pp.StringLiteral):
            return String(node.val)
        if isinstance(node, pp.ParenExpr):
            return self.eval(node.expr)
        if isinstance(node, pp.UnaryExpr):
            inner = self.eval(node.expr)
            if isinstance(inner, Scalar):
                return Scalar(-inner.values)
            vector = _as_vector(inner, "unary expression")
            return Vector([_drop_name(lab) for lab in vector.labels], -vector.values, vector.present)
        if isinstance(node, pp.VectorSelector):
            return self.selector(node)
        if isinstance(node, pp.MatrixSelector):
            if self.count != 1:
                raise BadData(
                    'invalid expression type "range vector" for range query, must be Scalar or instant Vector'
                )
            return self.raw(node)
        if isinstance(node, pp.SubqueryExpr):
            raise Unsupported("subqueries are not supported")
        if isinstance(node, pp.Call):
            return self.call(node)
        if isinstance(node, pp.AggregateExpr):
            return self.aggregate(node)
        if isinstance(node, pp.BinaryExpr):
            return self.binary(node)
        raise Unsupported(f"expression {type(node).__name__} is not supported")

    def call(self, node: pp.Call) -> Value:
        name = node.func.name
        args = list(node.args)
        if name in RANGE_FUNCTIONS:
            return range_function(self, name, args)
        handler = INSTANT_FUNCTIONS.get(name)
        if handler is None:
            raise Unsupported(f"function {name} is not supported")
        return handler(self, args)

    def aggregate(self, node: pp.AggregateExpr) -> Vector:
        op = str(node.op)
        vector = _as_vector(self.eval(node.expr), f"aggregation {op}")
        param = self.eval(node.param) if node.param is not None else None
        modifier = node.modifier
        by = modifier is None or modifier.type == pp.AggModifierType.By
        grouping = list(modifier.labels) if modifier is not None else []
        return aggregate(op, vector, grouping, by, param, self.count)

    def binary(self, node: pp.BinaryExpr) -> Value:
        op = str(node.op)
        lhs, rhs = self.eval(node.lhs), self.eval(node.rhs)
        modifier = node.modifier
        return_bool = bool(modifier is not None and modifier.return_bool)
        if isinstance(lhs, Scalar) and isinstance(rhs, Scalar):
            if op in COMPARISONS and not return_bool:
                raise BadData("comparisons between scalars must use BOOL modifier")
            return Scalar(_arith(op, lhs.values, rhs.values, return_bool))
        if isinstance(lhs, Vector) and isinstance(rhs, Scalar):
            return _vector_scalar(op, lhs, rhs.values[None, :], False, return_bool)
        if isinstance(lhs, Scalar) and isinstance(rhs, Vector):
            return _vector_scalar(op, rhs, lhs.values[None, :], True, return_bool)
        if isinstance(lhs, Vector) and isinstance(rhs, Vector):
            return vector_binary(op, lhs, rhs, modifier, return_bool)
        raise BadData(f"binary expression must contain only scalar and instant vector types ({op})")


def series_labels(row: dict[str, Any], names: dict[tuple[str, str], str]) -> Labels:
    labels: Labels = {}
    for key, value in row["labels"]:
        if value and key not in labels:
            labels[key] = value
    labels[NAME] = names[(row["m"], row["k"])]
    return labels


def _name_test(m: sql.Matcher) -> Callable[[str], bool]:
    if m.op == sql.EQ:
        return lambda name: name == m.value
    if m.op == sql.NE:
        return lambda name: name != m.value
    try:
        pattern = re.compile(m.value)
    except re.error as exc:
        raise BadData(f"invalid regular expression {m.value!r}: {exc}") from None
    if m.op == sql.RE:
        return lambda name: pattern.fullmatch(name) is not None
    return lambda name: pattern.fullmatch(name) is None


def _any(present: np.ndarray) -> np.ndarray:
    """Per step: whether any series has a sample."""
    return np.asarray(present.any(axis=0), dtype=bool)


def _drop_name(labels: Labels) -> Labels:
    return {k: v for k, v in labels.items() if k != NAME}


def _as_vector(value: Value, where: str) -> Vector:
    if not isinstance(value, Vector):
        kind = {Scalar: "scalar", String: "string", Matrix: "range vector"}[type(value)]
        raise BadData(f"expected type instant vector in {where}, got {kind}")
    return value


def _scalar_arg(value: Value, where: str) -> np.ndarray:
    if not isinstance(value, Scalar):
        raise BadData(f"expected type scalar in {where}")
    return value.values


# --- range functions --------------------------------------------------------------------------------------

RANGE_FUNCTIONS: dict[str, list[str]] = {
    "rate": ["t0", "v0", "t1", "v1", "corr"],
    "increase": ["t0", "v0", "t1", "v1", "corr"],
    "delta": ["t0", "v0", "t1", "v1"],
    "irate": ["t1", "v1", "pt1", "pv1"],
    "idelta": ["t1", "v1", "pt1", "pv1"],
    "avg_over_time": ["sum"],
    "sum_over_time": ["sum"],
    "count_over_time": [],
    "min_over_time": ["min"],
    "max_over_time": ["max"],
    "last_over_time": ["v1"],
    "present_over_time": [],
    "stddev_over_time": ["var"],
    "stdvar_over_time": ["var"],
    "quantile_over_time": ["quantile"],
    "changes": ["changes"],
    "resets": ["resets"],
    "deriv": ["sx", "sxx", "sxy", "sum", "min", "max"],
    "predict_linear": ["sx", "sxx", "sxy", "sum", "min", "max"],
}


def range_function(ev: Evaluation, name: str, args: list[pp.Expr]) -> Vector:
    ms = args[1] if name == "quantile_over_time" else args[0]
    if not isinstance(ms, pp.MatrixSelector):
        raise Unsupported(f"function {name} over a subquery is not supported (subqueries are not)")
    extra: dict[str, Any] = {}
    scalar_arg: np.ndarray | None = None
    if name == "quantile_over_time":
        qs = _scalar_arg(ev.eval(args[0]), name)
        if len(set(qs.tolist())) > 1:
            raise Unsupported("quantile_over_time with a quantile that changes over time is not supported")
        extra["q"] = float(qs[0])
    if name == "predict_linear":
        scalar_arg = _scalar_arg(ev.eval(args[1]), "predict_linear")
    labels, a, steps, pinned = ev.range_aggregates(ms, RANGE_FUNCTIONS[name], extra)
    n = a["n"]
    range_ms = to_ms(ms.range)
    t_eval = (steps.start + steps.step * np.arange(steps.count, dtype=np.int64))[None, :].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if name in ("rate", "increase", "delta"):
            present = n >= 2
            values = _extrapolated(a, n, t_eval, range_ms, name != "delta", name == "rate")
        elif name in ("irate", "idelta"):
            present = n >= 2
            last, prev = a["v1"], a["pv1"]
            values = last - prev
            interval = a["t1"] - a["pt1"]
            if name == "irate":
                values = np.where(last < prev, last, values) / (interval / 1000)
                present &= interval != 0
        elif name in ("avg_over_time", "sum_over_time"):
            present = n >= 1
            values = a["sum"] / n if name == "avg_over_time" else a["sum"]
        elif name == "count_over_time":
            present, values = n >= 1, n.copy()
        elif name == "present_over_time":
            present, values = n >= 1, np.ones_like(n)
        elif name in ("min_over_time", "max_over_time"):
            present, values = n >= 1, a[name[:3]]
        elif name == "last_over_time":
            present, values = n >= 1, a["v1"]
        elif name in ("stddev_over_time", "stdvar_over_time"):
            present = n >= 1
            values = np.sqrt(a["var"]) if name == "stddev_over_time" else a["var"]
        elif name == "quantile_over_time":
            q = extra["q"]
            present = n >= 1
            values = a["quantile"] if 0 <= q <= 1 else np.full_like(n, -np.inf if q < 0 else np.inf)
        elif name in ("changes", "resets"):
            present, values = n >= 1, a[name]
        else:  # deriv, predict_linear: least squares over (t - s0) seconds
            present = n >= 2
            sx, sxx, sxy, sy = a["sx"], a["sxx"], a["sxy"], a["sum"]
            cov = sxy - sx * sy / n
            var = sxx - sx * sx / n
            constant = a["min"] == a["max"]
            slope = np.where(constant, 0.0, cov / var)
            if name == "deriv":
                values = slope
            else:
                assert scalar_arg is not None
                x_eval = (t_eval + (to_ms(ms.vector_selector.offset or timedelta(0))) - steps.start) / 1000
                intercept = sy / n - slope * sx / n
                values = np.where(constant, a["min"], intercept + slope * (x_eval + scalar_arg[None, :]))
    keep_name = name == "last_over_time"
    out = Vector(
        [lab if keep_name else _drop_name(lab) for lab in labels],
        np.where(present, values, np.nan),
        present,
    )
    return ev._broadcast(_nonempty(out), pinned)


def _extrapolated(
    a: dict[str, np.ndarray], n: np.ndarray, t_eval: np.ndarray, range_ms: int, counter: bool, rate: bool
) -> np.ndarray:
    """Prometheus's extrapolatedRate: the change over the samples, stretched to the window's edges when
    they are close enough (and never below zero for a counter)."""
    result = a["v1"] - a["v0"]
    if counter:
        result = result + a["corr"]
    range_start, range_end = t_eval - range_ms, t_eval
    to_start = (a["t0"] - range_start) / 1000
    to_end = (range_end - a["t1"]) / 1000
    sampled = (a["t1"] - a["t0"]) / 1000
    average = sampled / (n - 1)
    if counter:
        to_zero = sampled * (a["v0"] / result)
        use_zero = (result > 0) & (a["v0"] >= 0) & (to_zero < to_start)
        to_start = np.where(use_zero, to_zero, to_start)
    threshold = average * 1.1
    interval = (
        sampled
        + np.where(to_start < threshold, to_start, average / 2)
        + np.where(to_end < threshold, to_end, average / 2)
    )
    result = result * (interval / sampled)
    if rate:
        result = result / (range_ms / 1000)
    return result


def _nonempty(vector: Vector) -> Vector:
    keep = vector.present.any(axis=1)
    if keep.all():
        return vector
    idx = np.flatnonzero(keep)
    return Vector([vector.labels[i] for i in idx], vector.values[idx], vector.present[idx])


# --- instant-vector functions -----------------------------------------------------------------------------


def _math(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[Evaluation, list[pp.Expr]], Value]:
    def apply(ev: Evaluation, args: list[pp.Expr]) -> Value:
        vector = _as_vector(ev.eval(args[0]), "function argument")
        with np.errstate(all="ignore"):
            values = fn(vector.values)
        return Vector([_drop_name(lab) for lab in vector.labels], values, vector.present)

    return apply


def _round(ev: Evaluation, args: list[pp.Expr]) -> Value:
    vector = _as_vector(ev.eval(args[0]), "round")
    to_nearest = _scalar_arg(ev.eval(args[1]), "round")[None, :] if len(args) > 1 else 1.0
    with np.errstate(all="ignore"):
        inverse = 1 / to_nearest
        values = np.floor(vector.values * inverse + 0.5) / inverse
    return Vector([_drop_name(lab) for lab in vector.labels], values, vector.present)


def _clamp(kind: str) -> Callable[[Evaluation, list[pp.Expr]], Value]:
    def apply(ev: Evaluation, args: list[pp.Expr]) -> Value:
        vector = _as_vector(ev.eval(args[0]), kind)
        bounds = [_scalar_arg(ev.eval(arg), kind)[None, :] for arg in args[1:]]
        present = vector.present.copy()
        with np.errstate(all="ignore"):
            if kind == "clamp":
                low, high = bounds
                values = np.maximum(low, np.minimum(high, vector.values))
                present &= ~(high < low).repeat(len(vector.labels), axis=0)
            elif kind == "clamp_min":
                values = np.maximum(bounds[0], vector.values)
            else:
                values = np.minimum(bounds[0], vector.values)
        return _nonempty(Vector([_drop_name(lab) for lab in vector.labels], values, present))

    return apply


def _time(ev: Evaluation, args: list[pp.Expr]) -> Value:
    return Scalar(ev.times / 1000)


def _vector(ev: Evaluation, args: list[pp.Expr]) -> Value:
    values = _scalar_arg(ev.eval(args[0]), "vector")
    return Vector([{}], values[None, :].copy(), np.ones((1, ev.count), dtype=bool))


def _scalar(ev: Evaluation, args: list[pp.Expr]) -> Value:
    vector = _as_vector(ev.eval(args[0]), "scalar")
    single = vector.present.sum(axis=0) == 1
    values = (
        np.where(vector.present, vector.values, 0).sum(axis=0) if len(vector.labels) else np.zeros(ev.count)
    )
    return Scalar(np.where(single, values, np.nan))


def _sort(descending: bool) -> Callable[[Evaluation, list[pp.Expr]], Value]:
    def apply(ev: Evaluation, args: list[pp.Expr]) -> Value:
        vector = _as_vector(ev.eval(args[0]), "sort")
        if not vector.labels:
            return vector
        key = vector.values[:, -1]
        order = np.argsort(-key if descending else key, kind="stable")
        return Vector([vector.labels[i] for i in order], vector.values[order], vector.present[order])

    return apply


def _absent(ev: Evaluation, args: list[pp.Expr]) -> Value:
    vector = _as_vector(ev.eval(args[0]), "absent")
    labels: Labels = {}
    node = args[0]
    if isinstance(node, pp.VectorSelector):
        for m in node.matchers.matchers:
            if _op(m) == sql.EQ and m.name != NAME:
                labels[m.name] = m.value
    missing = ~_any(vector.present) if len(vector.labels) else np.ones(ev.count, dtype=bool)
    return _nonempty(Vector([labels], np.ones((1, ev.count)), missing[None, :]))


def _string_arg(value: Value, where: str) -> str:
    if not isinstance(value, String):
        raise BadData(f"expected type string in {where}")
    return value.value


_GO_GROUP = re.compile(r"\$(\$|\{(\w+)\}|(\w+))")


def _expand(template: str, match: re.Match[str]) -> str:
    """Go's regexp.Expand: ``$1``, ``${1}``, ``$name``, ``$$``; unknown groups are empty."""

    def group(m: re.Match[str]) -> str:
        if m.group(1) == "$":
            return "$"
        name = m.group(2) or m.group(3)
        try:
            return match.group(int(name) if name.isdigit() else name) or ""
        except (IndexError, re.error):
            return ""

    return _GO_GROUP.sub(group, template)


def _unique(vector: Vector) -> Vector:
    seen: set[tuple[tuple[str, str], ...]] = set()
    for labels, present in zip(vector.labels, vector.present, strict=True):
        key = tuple(sorted(labels.items()))
        if key in seen and present.any():
            raise PromQLError("vector cannot contain metrics with the same labelset")
        seen.add(key)
    return vector


def _label_replace(ev: Evaluation, args: list[pp.Expr]) -> Value:
    vector = _as_vector(ev.eval(args[0]), "label_replace")
    dst, replacement, src, regex = (_string_arg(ev.eval(a), "label_replace") for a in args[1:5])
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise BadData(f"invalid regular expression in label_replace(): {regex}: {exc}") from None
    if not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", dst):
        raise BadData(f"invalid destination label name in label_replace(): {dst}")
    out = []
    for labels in vector.labels:
        match = pattern.fullmatch(labels.get(src, ""))
        if match is None:
            out.append(labels)
            continue
        value = _expand(replacement, match)
        new = {k: v for k, v in labels.items() if k != dst}
        if value:
            new[dst] = value
        out.append(new)
    return _unique(Vector(out, vector.values, vector.present))


def _label_join(ev: Evaluation, args: list[pp.Expr]) -> Value:
    vector = _as_vector(ev.eval(args[0]), "label_join")
    dst, separator, *sources = (_string_arg(ev.eval(a), "label_join") for a in args[1:])
    out = []
    for labels in vector.labels:
        value = separator.join(labels.get(s, "") for s in sources)
        new = {k: v for k, v in labels.items() if k != dst}
        if value:
            new[dst] = value
        out.append(new)
    return _unique(Vector(out, vector.values, vector.present))


def _histogram_quantile(ev: Evaluation, args: list[pp.Expr]) -> Value:
    q = _scalar_arg(ev.eval(args[0]), "histogram_quantile")
    vector = _as_vector(ev.eval(args[1]), "histogram_quantile")
    return histogram_quantile(q, vector)


def histogram_quantile(q: np.ndarray, vector: Vector) -> Vector:
    """Prometheus's bucketQuantile per group of ``le`` buckets (labels without ``le`` and the name)."""
    groups: dict[tuple[tuple[str, str], ...], list[tuple[float, int]]] = defaultdict(list)
    for i, labels in enumerate(vector.labels):
        le = labels.get("le")
        if le is None:
            continue
        try:
            bound = float(le.replace("Inf", "inf"))
        except ValueError:
            continue
        key = tuple(sorted((k, v) for k, v in labels.items() if k not in ("le", NAME)))
        groups[key].append((bound, i))
    out_labels: list[Labels] = []
    rows_v: list[np.ndarray] = []
    rows_p: list[np.ndarray] = []
    steps = vector.values.shape[1]
    for key, members in groups.items():
        members.sort()
        bounds = np.array([b for b, _ in members])
        idx = [i for _, i in members]
        counts = vector.values[idx]
        present = vector.present[idx]
        values = np.full(steps, np.nan)
        has = _any(present)
        for t in np.flatnonzero(has):
            col = present[:, t]
            values[t] = bucket_quantile(float(q[t]), bounds[col], counts[col, t])
        out_labels.append(dict(key))
        rows_v.append(values)
        rows_p.append(has)
    if not out_labels:
        return Vector.empty(steps)
    return Vector(out_labels, np.array(rows_v), np.array(rows_p))


def bucket_quantile(q: float, bounds: np.ndarray, counts: np.ndarray) -> float:
    """One quantile from cumulative buckets sorted by upper bound (Prometheus 2.x bucketQuantile)."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    if len(bounds) == 0 or not math.isinf(bounds[-1]) or bounds[-1] < 0:
        return math.nan
    # coalesce equal bounds, then make the counts monotonic
    unique, start = np.unique(bounds, return_index=True)
    if len(unique) != len(bounds):
        summed = np.add.reduceat(counts, start)
        bounds, counts = unique, summed
    counts = np.maximum.accumulate(counts)
    if len(bounds) < 2:
        return math.nan
    observations = counts[-1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = int(np.searchsorted(counts[:-1], rank, side="left"))
    if b == len(bounds) - 1:
        return float(bounds[-2])
    if b == 0 and bounds[0] <= 0:
        return float(bounds[0])
    bucket_start = 0.0
    bucket_end = float(bounds[b])
    count = float(counts[b])
    if b > 0:
        bucket_start = float(bounds[b - 1])
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return bucket_start + (bucket_end - bucket_start) * (rank / count)


INSTANT_FUNCTIONS: dict[str, Callable[[Evaluation, list[pp.Expr]], Value]] = {
    "abs": _math(np.abs),
    "ceil": _math(np.ceil),
    "floor": _math(np.floor),
    "exp": _math(np.exp),
    "ln": _math(np.log),
    "log2": _math(np.log2),
    "log10": _math(np.log10),
    "sqrt": _math(np.sqrt),
    "sgn": _math(np.sign),
    "round": _round,
    "clamp": _clamp("clamp"),
    "clamp_min": _clamp("clamp_min"),
    "clamp_max": _clamp("clamp_max"),
    "time": _time,
    "vector": _vector,
    "scalar": _scalar,
    "sort": _sort(False),
    "sort_desc": _sort(True),
    "absent": _absent,
    "label_replace": _label_replace,
    "label_join": _label_join,
    "histogram_quantile": _histogram_quantile,
}


# --- aggregation ------------------------------------------------------------------------------------------


def _group_key(labels: Labels, grouping: list[str], by: bool) -> tuple[tuple[str, str], ...]:
    if by:
        return tuple(sorted((k, labels[k]) for k in grouping if labels.get(k)))
    drop = {*grouping, NAME}
    return tuple(sorted((k, v) for k, v in labels.items() if k not in drop))


def aggregate(
    op: str, vector: Vector, grouping: list[str], by: bool, param: Value | None, steps: int
) -> Vector:
    if op in ("count_values", "limitk", "limit_ratio"):
        raise Unsupported(f"aggregation {op} is not supported")
    groups: dict[tuple[tuple[str, str], ...], list[int]] = defaultdict(list)
    for i, labels in enumerate(vector.labels):
        groups[_group_key(labels, grouping, by)].append(i)
    if op in ("topk", "bottomk"):
        k = _scalar_arg(param, op) if param is not None else np.ones(steps)
        return _topk(vector, groups, k, op == "topk")
    out_labels: list[Labels] = []
    rows_v: list[np.ndarray] = []
    rows_p: list[np.ndarray] = []
    with np.errstate(all="ignore"):
        for key, idx in groups.items():
            v, p = vector.values[idx], vector.present[idx]
            has = _any(p)
            if not has.any():
                continue
            count = p.sum(axis=0)
            total = np.where(p, v, 0.0).sum(axis=0)
            if op == "sum":
                value = total
            elif op == "avg":
                value = total / count
            elif op == "count":
                value = count.astype(np.float64)
            elif op == "group":
                value = np.ones(steps)
            elif op in ("min", "max"):
                # NaN samples lose against numbers (Prometheus); a step of only NaN stays NaN
                masked = np.where(p & ~np.isnan(v), v, np.inf if op == "min" else -np.inf)
                value = masked.min(axis=0) if op == "min" else masked.max(axis=0)
                value = np.where((p & ~np.isnan(v)).any(axis=0), value, np.nan)
            elif op in ("stddev", "stdvar"):
                mean = total / count
                var = np.where(p, (v - mean) ** 2, 0.0).sum(axis=0) / count
                value = np.sqrt(var) if op == "stddev" else var
            elif op == "quantile":
                qs = _scalar_arg(param, op) if param is not None else np.full(steps, np.nan)
                value = np.array(
                    [_quantile(float(qs[t]), v[p[:, t], t]) if has[t] else np.nan for t in range(steps)]
                )
            else:
                raise Unsupported(f"aggregation {op} is not supported")
            out_labels.append(dict(key))
            rows_v.append(value)
            rows_p.append(has)
    if not out_labels:
        return Vector.empty(steps)
    return Vector(out_labels, np.array(rows_v), np.array(rows_p))


def _quantile(q: float, values: np.ndarray) -> float:
    if len(values) == 0 or math.isnan(q):
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = np.sort(values)
    rank = q * (len(ordered) - 1)
    low = max(0, math.floor(rank))
    high = min(len(ordered) - 1, low + 1)
    weight = rank - math.floor(rank)
    return float(ordered[low] * (1 - weight) + ordered[high] * weight)


def _topk(vector: Vector, groups: dict[Any, list[int]], k: np.ndarray, top: bool) -> Vector:
    selected = np.zeros_like(vector.present)
    for idx in groups.values():
        v, p = vector.values[idx], vector.present[idx]
        nan_rank = -np.inf if top else np.inf
        key = np.where(p & ~np.isnan(v), v, nan_rank)
        key = np.where(p, key, -np.inf if top else np.inf)
        order = np.argsort(-key if top else key, axis=0, kind="stable")
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.arange(len(idx))[:, None].repeat(v.shape[1], axis=1), axis=0)
        selected[idx] = (ranks < np.floor(k)[None, :]) & p
    return _nonempty(Vector(vector.labels, np.where(selected, vector.values, np.nan), selected))


# --- binary operators -------------------------------------------------------------------------------------

COMPARISONS = ("==", "!=", ">", "<", ">=", "<=")
SET_OPS = ("and", "or", "unless")


def _arith(op: str, a: np.ndarray, b: np.ndarray, return_bool: bool = False) -> np.ndarray:
    with np.errstate(all="ignore"):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if op == "/":
            return np.divide(a, b)
        if op == "%":
            return np.fmod(a, b)
        if op == "^":
            return np.power(a, b)
        if op == "atan2":
            return np.arctan2(a, b)
        if op in COMPARISONS:
            result = _compare(op, a, b)
            return result.astype(np.float64) if return_bool else np.where(result, a, np.nan)
    raise Unsupported(f"operator {op} is not supported")


def _compare(op: str, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return {
        "==": np.equal,
        "!=": np.not_equal,
        ">": np.greater,
        "<": np.less,
        ">=": np.greater_equal,
        "<=": np.less_equal,
    }[op](a, b)


def _vector_scalar(op: str, vector: Vector, scalar: np.ndarray, swap: bool, return_bool: bool) -> Vector:
    if op in SET_OPS:
        raise BadData(f"set operator {op} not allowed in binary scalar expression")
    a, b = (scalar, vector.values) if swap else (vector.values, scalar)
    present = vector.present
    with np.errstate(all="ignore"):
        if op in COMPARISONS:
            keep = _compare(op, a, b)
            if return_bool:
                values = keep.astype(np.float64)
            else:
                values = vector.values
                present = present & keep
        else:
            values = _arith(op, a, b)
    drop = op not in COMPARISONS or return_bool
    labels = [_drop_name(lab) for lab in vector.labels] if drop else vector.labels
    return _nonempty(Vector(labels, np.where(present, values, np.nan), present))


def _signature(labels: Labels, on: bool, names: Sequence[str]) -> tuple[tuple[str, str], ...]:
    if on:
        return tuple(sorted((k, labels[k]) for k in names if labels.get(k)))
    drop = {*names, NAME}
    return tuple(sorted((k, v) for k, v in labels.items() if k not in drop))


def _merged(vector: Vector, idx: list[int], side: str, key: Any) -> tuple[np.ndarray, np.ndarray]:
    """Series of one side sharing a signature may follow each other in time (label churn), never overlap."""
    if len(idx) == 1:
        return vector.values[idx[0]], vector.present[idx[0]]
    p = vector.present[idx]
    if (p.sum(axis=0) > 1).any():
        raise PromQLError(
            f"found duplicate series for the match group {_fmt(key)} on the {side} hand-side of the "
            "operation; many-to-many matching not allowed: matching labels must be unique on one side"
        )
    return np.where(p, vector.values[idx], 0.0).sum(axis=0), _any(p)


def _fmt(key: Iterable[tuple[str, str]]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in key) + "}"


def vector_binary(op: str, lhs: Vector, rhs: Vector, modifier: Any, return_bool: bool) -> Vector:
    matching = modifier.matching if modifier is not None else None
    on = matching is not None and matching.type == pp.LabelModifierType.Include
    match_names = list(matching.labels) if matching is not None else []
    card = modifier.card if modifier is not None else pp.VectorMatchCardinality.OneToOne
    include = list(modifier.group_labels or []) if modifier is not None else []
    steps = lhs.values.shape[1]

    if op in SET_OPS:
        return _set_op(op, lhs, rhs, on, match_names, steps)

    many, one = (rhs, lhs) if card == pp.VectorMatchCardinality.OneToMany else (lhs, rhs)
    one_groups: dict[Any, list[int]] = defaultdict(list)
    for i, labels in enumerate(one.labels):
        one_groups[_signature(labels, on, match_names)].append(i)
    one_side = "left" if card == pp.VectorMatchCardinality.OneToMany else "right"
    drop_name = op not in COMPARISONS or return_bool
    out: dict[tuple[tuple[str, str], ...], tuple[Labels, np.ndarray, np.ndarray]] = {}
    many_seen: dict[Any, np.ndarray] = {}
    for i, labels in enumerate(many.labels):
        key = _signature(labels, on, match_names)
        if key not in one_groups:
            continue
        o_values, o_present = _merged(one, one_groups[key], one_side, key)
        present = many.present[i] & o_present
        if not present.any():
            continue
        if card == pp.VectorMatchCardinality.OneToOne:
            seen = many_seen.get(key)
            if seen is not None and (seen & present).any():
                raise PromQLError(
                    "multiple matches for labels: many-to-one matching must be explicit "
                    "(group_left/group_right)"
                )
            many_seen[key] = present if seen is None else seen | present
        a, b = (
            (o_values, many.values[i])
            if card == pp.VectorMatchCardinality.OneToMany
            else (
                many.values[i],
                o_values,
            )
        )
        with np.errstate(all="ignore"):
            if op in COMPARISONS:
                keep = _compare(op, a, b)
                if return_bool:
                    values = keep.astype(np.float64)
                else:
                    values = a
                    present = present & keep
            else:
                values = _arith(op, a, b)
        result = _result_labels(
            labels, one.labels[one_groups[key][0]], drop_name, card, on, match_names, include
        )
        rkey = tuple(sorted(result.items()))
        if rkey in out:
            prev_labels, prev_v, prev_p = out[rkey]
            if (prev_p & present).any():
                raise PromQLError(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                    if card != pp.VectorMatchCardinality.OneToOne
                    else "vector cannot contain metrics with the same labelset"
                )
            out[rkey] = (prev_labels, np.where(present, values, prev_v), prev_p | present)
        else:
            out[rkey] = (result, np.where(present, values, np.nan), present)
    if not out:
        return Vector.empty(steps)
    items = list(out.values())
    return _nonempty(
        Vector([i[0] for i in items], np.array([i[1] for i in items]), np.array([i[2] for i in items]))
    )


def _result_labels(
    many: Labels,
    one: Labels,
    drop_name: bool,
    card: Any,
    on: bool,
    match_names: list[str],
    include: list[str],
) -> Labels:
    labels = dict(many)
    if drop_name:
        labels.pop(NAME, None)
    if card == pp.VectorMatchCardinality.OneToOne:
        if on:
            labels = {k: v for k, v in labels.items() if k in match_names}
        else:
            labels = {k: v for k, v in labels.items() if k not in match_names}
    for name in include:
        if one.get(name):
            labels[name] = one[name]
        else:
            labels.pop(name, None)
    return labels


def _set_op(op: str, lhs: Vector, rhs: Vector, on: bool, names: list[str], steps: int) -> Vector:
    rhs_present: dict[Any, np.ndarray] = {}
    for i, labels in enumerate(rhs.labels):
        key = _signature(labels, on, names)
        rhs_present[key] = rhs_present.get(key, np.zeros(steps, dtype=bool)) | rhs.present[i]
    if op in ("and", "unless"):
        present = lhs.present.copy()
        for i, labels in enumerate(lhs.labels):
            other = rhs_present.get(_signature(labels, on, names), np.zeros(steps, dtype=bool))
            present[i] &= other if op == "and" else ~other
        return _nonempty(Vector(lhs.labels, np.where(present, lhs.values, np.nan), present))
    lhs_present: dict[Any, np.ndarray] = {}
    for i, labels in enumerate(lhs.labels):
        key = _signature(labels, on, names)
        lhs_present[key] = lhs_present.get(key, np.zeros(steps, dtype=bool)) | lhs.present[i]
    labels_out = list(lhs.labels)
    values = [lhs.values]
    present_out = [lhs.present]
    for i, labels in enumerate(rhs.labels):
        blocked = lhs_present.get(_signature(labels, on, names), np.zeros(steps, dtype=bool))
        p = rhs.present[i] & ~blocked
        if p.any():
            labels_out.append(labels)
            values.append(np.where(p, rhs.values[i], np.nan)[None, :])
            present_out.append(p[None, :])
    return _nonempty(Vector(labels_out, np.vstack(values), np.vstack(present_out)))


# --- entry points -----------------------------------------------------------------------------------------


def walk_window(node: Any, start: int, end: int) -> tuple[int | None, int | None]:
    """The time range a query reads (for the catalog of metrics); None when ``@`` makes it unbounded."""
    reach = 0
    unbounded = False

    def visit(n: Any) -> None:
        nonlocal reach, unbounded
        if isinstance(n, pp.MatrixSelector):
            vs = n.vector_selector
            reach = max(reach, to_ms(n.range) + (to_ms(vs.offset) if vs.offset else 0))
            unbounded = unbounded or vs.at is not None or (vs.offset is not None and to_ms(vs.offset) < 0)
            return
        if isinstance(n, pp.VectorSelector):
            reach = max(reach, LOOKBACK_MS + (to_ms(n.offset) if n.offset else 0))
            unbounded = unbounded or n.at is not None or (n.offset is not None and to_ms(n.offset) < 0)
            return
        for attr in ("expr", "lhs", "rhs", "param"):
            child = getattr(n, attr, None)
            if isinstance(child, pp.Expr):
                visit(child)
        if isinstance(n, pp.Call):
            for arg in n.args:
                visit(arg)

    visit(node)
    if unbounded:
        return None, None
    return start - reach, end


def check_steps(start: int, end: int, step: int) -> int:
    if end < start:
        raise BadData('invalid parameter "end": end timestamp must not be before start time')
    if step <= 0:
        raise BadData(
            'invalid parameter "step": zero or negative query resolution step widths are not accepted. '
            "Try a positive integer"
        )
    if (end - start) // step > MAX_POINTS_PER_SERIES:
        raise BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query "
            "resolution (?step=XX)"
        )
    return (end - start) // step + 1
