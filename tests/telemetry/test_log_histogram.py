"""The log histogram: the per-minute view and the raw table give the same counts for what both can answer,
and filters only the raw table knows switch to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from ollystack.clickhouse import Signal
from ollystack.telemetry import log_histogram
from ollystack.telemetry.log_histogram import (
    RAW,
    VIEW,
    bucket_starts,
    check_step,
    choose_step,
    uses_view,
)
from ollystack.telemetry.logs import LogQuery

NS = 1_000_000_000
MINUTE = 1_700_000_040  # a whole minute, Unix seconds
START_NS = MINUTE * NS
END_NS = (MINUTE + 600) * NS
TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")

# (seconds after MINUTE, severity number, body, service, trace id)
RECORDS = [
    (5, 9, "cart loaded", "checkout", b""),
    (20, 17, "card declined by issuer", "payments", TRACE),
    (70, 13, "slow response from issuer", "payments", TRACE),
    (75, 9, "order placed", "checkout", b""),
    (130, 17, "card declined again", "payments", b""),
    (135, 21, "payments crashed", "payments", b""),
    (140, 0, "no severity at all", "checkout", b""),
]


def logs_request(records: list[tuple[int, int, str, str, bytes]]) -> ExportLogsServiceRequest:
    req = ExportLogsServiceRequest()
    for offset, number, body, service, trace_id in records:
        rl = req.resource_logs.add()
        rl.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
        rl.scope_logs.add().log_records.append(
            LogRecord(
                time_unix_nano=(MINUTE + offset) * NS,
                severity_number=number,  # type: ignore[arg-type]
                body=AnyValue(string_value=body),
                trace_id=trace_id,
                attributes=[KeyValue(key="order.kind", value=AnyValue(string_value=body.split()[0]))],
            )
        )
    return req


@pytest.fixture
def stored(insert_requests: Callable[..., int], tenant_id: str) -> str:
    insert_requests(Signal.LOGS, (tenant_id, logs_request(RECORDS)))
    return tenant_id


def histogram(tenant_id: str, step: int | None = 60, **filters: Any) -> log_histogram.Histogram:
    return log_histogram.log_histogram(tenant_id, LogQuery(START_NS, END_NS, **filters), step)


def test_the_view_counts_per_severity_and_minute(stored: str) -> None:
    result = histogram(stored)
    assert result.source == VIEW
    assert result.step_seconds == 60
    assert result.times == [MINUTE + 60 * n for n in range(10)]
    assert result.counts == {
        "INFO": [1, 1] + [0] * 8,
        "WARN": [0, 1] + [0] * 8,
        "ERROR": [1, 0, 1] + [0] * 7,
        "FATAL": [0, 0, 1] + [0] * 7,
        "UNSPECIFIED": [0, 0, 1] + [0] * 7,
    }
    assert not result.partial


def test_the_raw_table_agrees_with_the_view(stored: str) -> None:
    view = histogram(stored, service="payments", severity_min=17)
    raw = histogram(stored, service="payments", severity_min=18)  # not a class floor: the raw table
    assert (view.source, raw.source) == (VIEW, RAW)
    assert view.counts == {"ERROR": [1, 0, 1] + [0] * 7, "FATAL": [0, 0, 1] + [0] * 7}
    assert raw.counts == {"FATAL": [0, 0, 1] + [0] * 7}


def test_text_trace_and_attribute_filters_read_the_raw_table(stored: str) -> None:
    declined = histogram(stored, text="declined")
    assert declined.source == RAW
    assert declined.counts == {"ERROR": [1, 0, 1] + [0] * 7}
    assert histogram(stored, trace_id=TRACE.hex()).counts == {
        "WARN": [0, 1] + [0] * 8,
        "ERROR": [1] + [0] * 9,
    }
    assert histogram(stored, attributes=(("order.kind", "cart"),)).counts == {"INFO": [1] + [0] * 9}
    assert histogram(stored, text="nothing-like-this").counts == {}


def test_the_raw_table_takes_steps_below_a_minute_and_the_view_rounds_them(stored: str) -> None:
    raw = histogram(stored, step=30, text="declined")
    assert raw.step_seconds == 30
    assert raw.counts["ERROR"][:6] == [1, 0, 0, 0, 1, 0]
    assert histogram(stored, step=30).step_seconds == 60
    assert histogram(stored, step=90).step_seconds == 60


def test_the_newest_records_are_counted_when_the_raw_query_hits_its_cap(
    stored: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(log_histogram, "RAW_CAP", 1)
    result = histogram(stored, text="declined")
    assert result.partial
    assert result.counts == {"ERROR": [0, 0, 1] + [0] * 7}
    monkeypatch.setattr(log_histogram, "RAW_CAP", 3)
    assert not histogram(stored, text="declined").partial


def test_other_tenants_are_not_counted(stored: str, tenant_id: str) -> None:
    assert histogram("another-tenant").counts == {}
    assert histogram("another-tenant", text="declined").counts == {}


def test_steps() -> None:
    assert choose_step(0, 3600 * NS, 60) == 60
    assert choose_step(0, 300 * NS) == 5
    assert choose_step(0, 300 * NS, 60) == 60
    assert choose_step(0, 7 * 86400 * NS, 60) == 10800
    assert choose_step(0, 3650 * 86400 * NS) == 86400
    with pytest.raises(ValueError, match="at most 1500"):
        check_step(0, 86400 * NS, 1)
    with pytest.raises(ValueError, match="at least 1 second"):
        check_step(0, 60 * NS, 0)
    assert bucket_starts(61 * NS, 180 * NS, 60) == [60, 120]
    assert bucket_starts(61 * NS, 181 * NS, 60) == [60, 120, 180]
    assert bucket_starts(5 * NS, 5 * NS, 60) == [0]


def test_which_queries_the_view_answers() -> None:
    assert uses_view(LogQuery(0, 1, service="a", severity_min=9))
    assert not uses_view(LogQuery(0, 1, severity_min=10))
    assert not uses_view(LogQuery(0, 1, text="x"))
    assert not uses_view(LogQuery(0, 1, trace_id=TRACE.hex()))
    assert not uses_view(LogQuery(0, 1, attributes=(("k", "v"),)))
