"""One evaluation of the enabled alert rules: the figures they watch, read in few statements, then applied
to their states (``alerts.state``).

Every second (and when data arrives) the evaluator reads

- all RED rules of all tenants (threshold, absence and anomaly alike) in one statement over
  ``service_metrics_1s``, plus one over ``service_metrics_1m`` for the trailing hour of anomaly rules,
- log rules in statements of ``LOG_RULES_PER_STATEMENT`` rules over the raw ``logs`` table,
- PromQL rules one instant query each (anomaly rules: also an hour of per-minute values), which is what
  makes them the expensive kind,

turns the figures into observations and applies them in one transaction. A source whose statement fails is
logged and its rules are left out of this evaluation: their alerts keep their state until the next one.
Running several evaluations at once (workers, wake-ups) is safe: see ``alerts.state``.
"""

from __future__ import annotations

import logging
import math
import operator
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from django.utils import timezone

from alerts.models import Comparator, Rule, RuleKind, RuleSource
from alerts.state import Observation, apply_observations, series_key
from ollystack.telemetry import alert_queries as aq

log = logging.getLogger(__name__)

NS = 1_000_000_000
EXAMPLE_CHARS = 500
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    Comparator.GT: operator.gt,
    Comparator.GE: operator.ge,
    Comparator.LT: operator.lt,
    Comparator.LE: operator.le,
}


@dataclass(frozen=True)
class EvaluationReport:
    rules: int  # rules evaluated (failed ones not included)
    queries: int  # statements of the batched readers, plus one per PromQL evaluation
    events: int  # transitions recorded
    seconds: float
    failed: int = 0  # rules left out because their source's statement failed
    timings: dict[str, float] = field(default_factory=dict)  # seconds per source, and "apply"


def compare(rule: Rule, value: float | None) -> bool:
    return value is not None and not math.isnan(value) and _COMPARE[rule.comparator](value, rule.threshold)


def _anomalous(rule: Rule, z: float) -> bool:
    """Upwards for > and >=, downwards for < and <=."""
    return z >= rule.anomaly_z if rule.comparator in (Comparator.GT, Comparator.GE) else z <= -rule.anomaly_z


def _to_ns(moment: datetime) -> int:
    return int(moment.timestamp()) * NS + moment.microsecond * 1000


def _red_labels(rule: Rule) -> dict[str, str]:
    return {"service": rule.service, **({"operation": rule.operation} if rule.operation else {})}


def _red_rule(rule: Rule) -> aq.RedRule:
    return aq.RedRule(
        rule.id,
        rule.service,
        rule.operation,
        rule.red_figure or "error_rate",
        rule.quantile,
        rule.window_seconds,
    )


class _Run:
    """The observations of one evaluation, built source by source."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.now_ns = _to_ns(now)
        self.observations: list[Observation] = []
        self.evaluated: list[Rule] = []
        self.failed = 0
        self.queries = 0
        self.timings: dict[str, float] = {}

    def timed(self, source: str, rules: Sequence[Rule], statements: int, read: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return read()
        except Exception:
            tenants = sorted({str(r.tenant_id) for r in rules})
            log.exception(
                "alert rules not evaluated source=%s rules=%d tenants=%s",
                source,
                len(rules),
                ",".join(tenants),
            )
            self.failed += len(rules)
            return None
        finally:
            self.queries += statements
            self.timings[source] = self.timings.get(source, 0.0) + time.perf_counter() - started

    def observe(
        self,
        rule: Rule,
        value: float | None,
        condition: bool,
        details: dict[str, Any],
        labels: dict[str, str] | None = None,
        series: str = "",
    ) -> None:
        self.observations.append(Observation(rule.id, series, labels or {}, value, condition, details))

    def seconds_since(self, last_ns: int | None) -> float | None:
        return None if last_ns is None else max(0.0, (self.now_ns - last_ns) / NS)

    # --- RED ------------------------------------------------------------------------------------------------

    def red(self, rules: Sequence[Rule]) -> None:
        if not rules:
            return
        by_tenant: dict[str, list[aq.RedRule]] = defaultdict(list)
        for rule in rules:
            by_tenant[str(rule.tenant_id)].append(_red_rule(rule))
        windows = self.timed("red", rules, 1, lambda: aq.red_windows_of_tenants(by_tenant, self.now_ns))
        if windows is None:
            return
        found = {w.rule_id: w for w in windows}
        anomaly = [r for r in rules if r.kind == RuleKind.ANOMALY]
        histories: dict[int, aq.History] = {}
        if anomaly:
            anomaly_ids = {rule.id for rule in anomaly}
            anomaly_by_tenant = {
                tenant: [spec for spec in own if spec.rule_id in anomaly_ids]
                for tenant, own in by_tenant.items()
            }
            history = self.timed(
                "red_history", anomaly, 1, lambda: aq.red_history_of_tenants(anomaly_by_tenant, self.now_ns)
            )
            if history is None:
                rules = [r for r in rules if r.kind != RuleKind.ANOMALY]
            else:
                histories = {h.rule_id: h for h in history}
        specs = {spec.rule_id: spec for own in by_tenant.values() for spec in own}
        for rule in rules:
            window = found.get(rule.id)
            spec = specs[rule.id]
            value = aq.red_value(spec, window)
            details: dict[str, Any] = {
                "figure": spec.figure,
                "window_seconds": rule.window_seconds,
                "requests": window.requests if window else 0.0,
                "errors": window.errors if window else 0.0,
            }
            if spec.figure == "latency":
                details["quantile"] = rule.quantile
            labels = _red_labels(rule)
            if rule.kind == RuleKind.ABSENCE:
                since = self.seconds_since(window.last_seen_ns if window else None)
                self.observe(rule, since, window is None, details, labels=labels)
            elif rule.kind == RuleKind.ANOMALY:
                past = histories.get(rule.id) or aq.History(rule.id, rule.service, ())
                z = past.z_score(value) if value is not None else 0.0
                details |= {
                    "value": value,
                    "mean": past.mean,
                    "stddev": past.stddev,
                    "samples": len(past.values),
                }
                self.observe(rule, z, _anomalous(rule, z), details, labels=labels)
            else:
                self.observe(rule, value, compare(rule, value), details, labels=labels)
            self.evaluated.append(rule)

    # --- logs -----------------------------------------------------------------------------------------------

    def logs(self, rules: Sequence[Rule]) -> None:
        if not rules:
            return
        by_tenant: dict[str, list[aq.LogRule]] = defaultdict(list)
        for rule in rules:
            by_tenant[str(rule.tenant_id)].append(
                aq.LogRule(rule.id, rule.log_query, rule.log_min_severity, rule.window_seconds)
            )
        statements = math.ceil(len(rules) / aq.LOG_RULES_PER_STATEMENT)
        windows = self.timed(
            "logs", rules, statements, lambda: aq.log_windows_of_tenants(by_tenant, self.now_ns)
        )
        if windows is None:
            return
        found = {w.rule_id: w for w in windows}
        for rule in rules:
            window = found.get(rule.id)
            records = window.records if window else 0
            details: dict[str, Any] = {"window_seconds": rule.window_seconds, "records": records}
            if window:
                details["example"] = window.example[:EXAMPLE_CHARS]
            if rule.kind == RuleKind.ABSENCE:
                since = self.seconds_since(window.last_seen_ns if window else None)
                self.observe(rule, since, window is None, details)
            else:
                self.observe(rule, float(records), compare(rule, float(records)), details)
            self.evaluated.append(rule)

    # --- PromQL ---------------------------------------------------------------------------------------------

    def promql(self, rules: Sequence[Rule]) -> None:
        from ollystack.telemetry.promql.query import instant_query, range_query

        now_ms = self.now_ns // 1_000_000
        for rule in rules:
            tenant = str(rule.tenant_id)
            answer = self.timed("promql", [rule], 1, partial(instant_query, tenant, rule.expr, now_ms))
            if answer is None:
                continue
            samples = _samples(answer)
            details: dict[str, Any] = {"expr": rule.expr}
            if rule.kind == RuleKind.ABSENCE:
                self.observe(rule, float(len(samples)), not samples, details)
            elif rule.kind == RuleKind.ANOMALY:
                end_ms = now_ms - rule.window_seconds * 1000
                past = self.timed(
                    "promql",
                    [rule],
                    1,
                    partial(
                        range_query, tenant, rule.expr, end_ms - aq.HISTORY_MINUTES * 60_000, end_ms, 60_000
                    ),
                )
                if past is None:
                    continue
                history = {
                    series_key(s["metric"]): [float(v) for _, v in s["values"]] for s in past["result"]
                }
                for labels, value in samples:
                    key = series_key(labels)
                    values = tuple(v for v in history.get(key, []) if math.isfinite(v))
                    h = aq.History(rule.id, "", values)
                    z = h.z_score(value) if math.isfinite(value) else 0.0
                    extra = {"value": value, "mean": h.mean, "stddev": h.stddev, "samples": len(values)}
                    self.observe(rule, z, _anomalous(rule, z), details | extra, labels=labels, series=key)
            else:
                for labels, value in samples:
                    self.observe(
                        rule, value, compare(rule, value), details, labels=labels, series=series_key(labels)
                    )
            self.evaluated.append(rule)


def _samples(answer: dict[str, Any]) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of an instant query's answer: one per series of a vector, one unlabelled scalar."""
    if answer["resultType"] == "scalar":
        return [({}, float(answer["result"][1]))]
    if answer["resultType"] == "vector":
        return [(dict(s["metric"]), float(s["value"][1])) for s in answer["result"]]
    return []


def evaluate(tenant_ids: Collection[str] | None = None, now: datetime | None = None) -> EvaluationReport:
    """Evaluate the enabled rules (of these tenants, else of all) at ``now`` and apply the result."""
    started = time.perf_counter()
    run = _Run(now or timezone.now())
    rules = Rule.objects.filter(enabled=True)
    if tenant_ids is not None:
        rules = rules.filter(tenant_id__in=list(tenant_ids))
    by_source: dict[str, list[Rule]] = defaultdict(list)
    for rule in rules.order_by("id"):
        by_source[rule.source].append(rule)
    run.red(by_source[RuleSource.RED])
    run.logs(by_source[RuleSource.LOGS])
    run.promql(by_source[RuleSource.PROMQL])
    applied = time.perf_counter()
    events = apply_observations(run.evaluated, run.observations, run.now)
    run.timings["apply"] = time.perf_counter() - applied
    return EvaluationReport(
        rules=len(run.evaluated),
        queries=run.queries,
        events=len(events),
        seconds=time.perf_counter() - started,
        failed=run.failed,
        timings=run.timings,
    )
