"""Telemetry for the UI tests, sent the way instrumented services do: the OpenTelemetry SDK over OTLP/HTTP.

Three services call each other (frontend → checkout → payments; checkout → inventory); a share of the
payments calls fail, and each request logs through the SDK's logger inside its span (so records carry the
trace id). What was sent is returned, so tests can look for it.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

SERVICES = ("frontend", "checkout", "payments", "inventory")


@dataclass
class Sent:
    trace_ids: list[str] = field(default_factory=list)
    error_trace_ids: list[str] = field(default_factory=list)
    log_bodies: list[str] = field(default_factory=list)


class Traffic:
    """One tracer and one logger provider per service, exporting to a running OllyStack."""

    def __init__(self, otlp_http: str, ingest_key: str) -> None:
        headers = {"Authorization": f"Bearer {ingest_key}"}
        self.orders = 1000
        self.tracers: dict[str, trace.Tracer] = {}
        self.providers: list[TracerProvider] = []
        self.log_providers: list[LoggerProvider] = []
        self.loggers = {}
        for service in SERVICES:
            resource = Resource.create({"service.name": service, "deployment.environment": "test"})
            provider = TracerProvider(resource=resource)
            provider.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_http}/v1/traces", headers=headers))
            )
            self.providers.append(provider)
            self.tracers[service] = provider.get_tracer("tests.ui")
            log_provider = LoggerProvider(resource=resource)
            log_provider.add_log_record_processor(
                BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{otlp_http}/v1/logs", headers=headers))
            )
            self.log_providers.append(log_provider)
            self.loggers[service] = log_provider.get_logger("tests.ui")

    def log(
        self, service: str, body: str, severity: SeverityNumber = SeverityNumber.INFO, **attrs: object
    ) -> None:
        self.loggers[service].emit(
            timestamp=time.time_ns(),
            severity_number=severity,
            severity_text=severity.name.rstrip("0123456789") if severity.name else "",
            body=body,
            attributes=attrs,  # type: ignore[arg-type]
        )

    def checkout(self, sent: Sent, order: int, fail: bool, rng: random.Random) -> None:
        """One request through the services; the current span context reaches the logger."""
        front = self.tracers["frontend"]
        with front.start_as_current_span("GET /checkout", kind=SpanKind.SERVER) as root:
            root.set_attribute("http.route", "/checkout")
            root.set_attribute("order.id", order)
            trace_id = format(root.get_span_context().trace_id, "032x")
            self.log("frontend", f"checkout started for order {order}", order_id=order)
            with front.start_as_current_span("POST checkout", kind=SpanKind.CLIENT) as call:
                self._checkout(sent, order, fail, rng)
                if fail:
                    call.set_status(Status(StatusCode.ERROR, "checkout answered 502"))
            if fail:
                root.set_status(Status(StatusCode.ERROR, "checkout failed"))
        sent.trace_ids.append(trace_id)
        if fail:
            sent.error_trace_ids.append(trace_id)

    def _checkout(self, sent: Sent, order: int, fail: bool, rng: random.Random) -> None:
        tracer = self.tracers["checkout"]
        with tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER):
            time.sleep(rng.uniform(0.001, 0.004))
            with (
                tracer.start_as_current_span("GET inventory", kind=SpanKind.CLIENT),
                self.tracers["inventory"].start_as_current_span("reserve", kind=SpanKind.SERVER),
            ):
                time.sleep(rng.uniform(0.0005, 0.002))
            with (
                tracer.start_as_current_span("POST payments", kind=SpanKind.CLIENT) as call,
                self.tracers["payments"].start_as_current_span("charge", kind=SpanKind.SERVER) as charge,
            ):
                time.sleep(rng.uniform(0.001, 0.006))
                if fail:
                    charge.add_event("card declined", {"card.brand": "visa"})
                    charge.set_status(Status(StatusCode.ERROR, "card declined by issuer"))
                    body = f"payment failed for order {order}: card declined by issuer"
                    self.log("payments", body, SeverityNumber.ERROR, order_id=order)
                    sent.log_bodies.append(body)
                    call.set_status(Status(StatusCode.ERROR, "payments answered 402"))

    def send(self, requests: int = 40, error_every: int = 5, seed: int = 7) -> Sent:
        """``requests`` checkouts, every ``error_every``-th failing; order ids never repeat across calls,
        so what one test sends cannot be mistaken for what another sent."""
        sent = Sent()
        rng = random.Random(seed)
        for n in range(requests):
            self.orders += 1
            self.checkout(sent, self.orders, fail=n % error_every == error_every - 1, rng=rng)
        self.flush()
        return sent

    def flush(self) -> None:
        for provider in self.providers:
            assert provider.force_flush(10_000), "the span exporter did not flush"
        for log_provider in self.log_providers:
            assert log_provider.force_flush(10_000), "the log exporter did not flush"

    def close(self) -> None:
        for provider in self.providers:
            provider.shutdown()
        for log_provider in self.log_providers:
            log_provider.shutdown()
