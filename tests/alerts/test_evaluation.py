"""Evaluation end to end on real data: rules of every source and kind over the embedded engine, their
transitions, the statements it takes, failures left out, and two evaluators at once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from alerts.evaluation import evaluate
from alerts.models import AlertEvent, AlertState, RedFigure, Rule, RuleKind, RuleSource, State
from ollystack.clickhouse import Signal
from tenants.models import Tenant
from tests.alerts.test_alert_queries import NS, Spans, kv, logs

pytestmark = pytest.mark.django_db


def now_at() -> datetime:
    """A whole second well in the past, so the data below is complete; + 0.5 s."""
    second = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    return second + timedelta(milliseconds=500)


def ns(moment: datetime) -> int:
    return int(moment.timestamp()) * NS


def tenant() -> Tenant:
    return Tenant.objects.create(name=f"t{uuid.uuid4().hex[:12]}")


def rule(owner: Tenant, name: str, **fields: Any) -> Rule:
    fields.setdefault("source", RuleSource.RED)
    if fields["source"] == RuleSource.RED:
        fields.setdefault("service", "checkout")
        fields.setdefault("red_figure", RedFigure.ERROR_RATE)
    fields.setdefault("window_seconds", 10)
    return Rule.objects.create(tenant=owner, name=name, **fields)


def transitions(owner: Tenant) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for event in AlertEvent.objects.filter(tenant=owner).order_by("at", "id").select_related("rule"):
        out.setdefault(event.rule.name, []).append(f"{event.from_state}>{event.to_state}")
    return out


def gauge(name: str, service: str, at_ns: int, value: float) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.append(kv("service.name", service))
    metric = rm.scope_metrics.add().metrics.add(name=name)
    metric.gauge.data_points.add(time_unix_nano=at_ns, as_double=value)
    return req


def test_rules_of_each_source_fire_and_resolve(insert_requests: Callable[..., int]) -> None:
    acme, other = tenant(), tenant()
    now = now_at()
    second = ns(now)
    # a quiet minute, then an error burst in the last two seconds; the other tenant's checkout is healthy
    insert_requests(
        Signal.TRACES,
        (str(acme.id), Spans().add("checkout", second - 8 * NS, count=20, duration_ms=40).req),
        (str(acme.id), Spans().add("checkout", second - NS, count=20, error=True, duration_ms=900).req),
        (str(other.id), Spans().add("checkout", second - NS, count=50).req),
    )
    insert_requests(
        Signal.LOGS,
        (str(acme.id), logs("checkout", (second, 17, "payment declined for order 7"))),
    )
    rule(acme, "errors", threshold=0.2)
    rule(acme, "slow", red_figure=RedFigure.LATENCY, quantile=0.9, threshold=500)
    rule(acme, "busy", red_figure=RedFigure.REQUEST_RATE, threshold=100)  # 4 per second: quiet
    rule(acme, "cart gone", kind=RuleKind.ABSENCE, service="cart")
    rule(acme, "checkout gone", kind=RuleKind.ABSENCE)
    rule(acme, "declined", source=RuleSource.LOGS, log_query="payment declined", threshold=0)
    rule(acme, "no audit log", source=RuleSource.LOGS, kind=RuleKind.ABSENCE, log_query="audit")
    rule(acme, "paused", threshold=0, enabled=False)
    rule(other, "errors", threshold=0.2)

    report = evaluate(now=now)
    assert report.rules == 8
    assert report.queries == 2  # one for every RED rule of every tenant, one for the log rules
    assert report.failed == 0
    fired = {"errors", "slow", "cart gone", "declined", "no audit log"}
    assert transitions(acme) == {name: ["inactive>firing"] for name in sorted(fired)}
    assert transitions(other) == {}
    errors = AlertEvent.objects.get(tenant=acme, rule__name="errors")
    assert errors.value == pytest.approx(0.5)
    assert (errors.threshold, errors.labels) == (0.2, {"service": "checkout"})
    assert errors.details == {"figure": "error_rate", "window_seconds": 10, "requests": 40.0, "errors": 20.0}
    declined = AlertEvent.objects.get(tenant=acme, rule__name="declined")
    assert declined.details["example"] == "payment declined for order 7"
    assert report.events == len(fired)

    # 20 s later the burst is out of every window: the RED and log alerts resolve, the absences stay
    later = evaluate(tenant_ids=[str(acme.id)], now=now + timedelta(seconds=20))
    assert later.rules == 7
    assert transitions(acme)["errors"] == ["inactive>firing", "firing>resolved"]
    assert transitions(acme)["declined"] == ["inactive>firing", "firing>resolved"]
    assert transitions(acme)["checkout gone"] == ["inactive>firing"]  # no spans for 10 s now
    assert transitions(acme)["cart gone"] == ["inactive>firing"]


def test_anomaly_against_the_trailing_hour(insert_requests: Callable[..., int]) -> None:
    acme = tenant()
    now = now_at()
    minute = ns(now) // (60 * NS) * 60 * NS
    history = Spans()
    for m in range(2, 40):  # steady 1 to 3 % errors for most of the hour
        history.add("checkout", minute - m * 60 * NS, count=100 - m % 3 - 1)
        history.add("checkout", minute - m * 60 * NS + NS, count=m % 3 + 1, error=True)
    history.add("checkout", ns(now) - 2 * NS, count=10)
    history.add("checkout", ns(now) - NS, count=10, error=True)
    insert_requests(Signal.TRACES, (str(acme.id), history.req))
    rule(acme, "error spike", kind=RuleKind.ANOMALY, anomaly_z=3)
    rule(acme, "error drop", kind=RuleKind.ANOMALY, anomaly_z=3, comparator="<")

    report = evaluate(now=now)
    assert report.queries == 2  # the windows and the history
    assert transitions(acme) == {"error spike": ["inactive>firing"]}
    event = AlertEvent.objects.get(rule__name="error spike")
    assert event.value is not None
    assert event.value > 3  # the z-score
    assert event.details["value"] == pytest.approx(0.5)
    assert event.details["samples"] == 38
    assert event.threshold == 3


def test_promql_series_fire_and_go(insert_requests: Callable[..., int]) -> None:
    acme = tenant()
    now = now_at()
    insert_requests(
        Signal.METRICS,
        (str(acme.id), gauge("queue.depth", "worker", ns(now) - 5 * NS, 120)),
        (str(acme.id), gauge("queue.depth", "mailer", ns(now) - 5 * NS, 3)),
    )
    rule(acme, "queue deep", source=RuleSource.PROMQL, expr="queue_depth", threshold=100, service="")
    rule(acme, "no heartbeat", source=RuleSource.PROMQL, kind=RuleKind.ABSENCE, expr="heartbeat", service="")
    broken = rule(acme, "broken", source=RuleSource.PROMQL, expr="queue_depth", service="")
    Rule.objects.filter(pk=broken.pk).update(expr="rate(queue_depth)")  # stored before validation existed

    report = evaluate(now=now)
    assert (report.rules, report.failed) == (2, 1)
    assert transitions(acme) == {"no heartbeat": ["inactive>firing"], "queue deep": ["inactive>firing"]}
    deep = AlertState.objects.get(rule__name="queue deep", state=State.FIRING)
    assert deep.labels["job"] == "worker"
    assert AlertState.objects.filter(rule__name="queue deep").count() == 2  # mailer: inactive

    # past the PromQL lookback (5 min) both series are gone: the firing one resolves
    evaluate(now=now + timedelta(minutes=6))
    assert transitions(acme)["queue deep"] == ["inactive>firing", "firing>resolved"]


def test_an_evaluation_of_a_moment_already_applied_records_nothing(
    insert_requests: Callable[..., int],
) -> None:
    """What makes concurrent evaluators safe (the rows they lock are then read fresh): the second evaluation
    of the same moment, or of an older one, finds the alerts already there and leaves them."""
    acme = tenant()
    now = now_at()
    insert_requests(Signal.TRACES, (str(acme.id), Spans().add("checkout", ns(now), count=5, error=True).req))
    for n in range(20):
        rule(acme, f"errors {n}", threshold=0.1)
    assert evaluate(now=now).events == 20
    assert evaluate(now=now).events == 0
    assert evaluate(now=now - timedelta(seconds=5)).events == 0
    assert AlertEvent.objects.filter(tenant=acme).count() == 20
    assert set(AlertState.objects.filter(rule__tenant=acme).values_list("state", flat=True)) == {State.FIRING}
