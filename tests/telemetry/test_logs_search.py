"""Log search filters and cursor pagination."""

from __future__ import annotations

from typing import Any

import pytest

from ollystack.clickhouse import Signal
from ollystack.telemetry.logs import LogQuery, search_logs
from tests.telemetry.builders import BASE_NS, NS, full_logs_request

WINDOW = (BASE_NS - 10 * NS, BASE_NS + 3600 * NS)


@pytest.fixture
def logs(insert_requests: Any, tenant_id: str) -> Any:
    req = full_logs_request(service="checkout")
    insert_requests(Signal.LOGS, (tenant_id, req))
    return req.resource_logs[0].scope_logs[0].log_records


def walk_pages(tenant_id: str, limit: int) -> list[str]:
    """The times of every record of WINDOW, page after page."""
    seen: list[str] = []
    cursor = None
    while True:
        page = search_logs(tenant_id, LogQuery(*WINDOW, limit=limit, cursor=cursor))
        seen += [r["timeUnixNano"] for r in page.records]
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor


def test_pagination_walks_every_record_newest_first(logs: Any, tenant_id: str) -> None:
    seen = walk_pages(tenant_id, limit=4)
    assert seen == sorted((str(r.time_unix_nano) for r in logs), reverse=True)


def test_filters(logs: Any, tenant_id: str) -> None:
    def times(**kwargs: Any) -> set[str]:
        return {
            r["timeUnixNano"] for r in search_logs(tenant_id, LogQuery(*WINDOW, limit=1000, **kwargs)).records
        }

    assert times(text="wörld") == {
        str(r.time_unix_nano) for r in logs if r.body.string_value == "hello wörld ✓"
    }
    assert times(text="%") == set()
    assert times(severity_min=20) == {str(r.time_unix_nano) for r in logs if r.severity_number >= 20}
    assert times(severity_text="WARN") == {str(r.time_unix_nano) for r in logs if r.severity_text == "WARN"}
    assert times(trace_id=logs[3].trace_id.hex()) == {str(logs[3].time_unix_nano)}
    assert times(service="checkout") == {str(r.time_unix_nano) for r in logs}
    assert times(service="other") == set()


def test_bad_cursor_and_trace_id_are_value_errors(tenant_id: str, clickhouse: Any) -> None:
    with pytest.raises(ValueError, match="cursor"):
        search_logs(tenant_id, LogQuery(*WINDOW, cursor="!!nope"))
    with pytest.raises(ValueError, match="trace id"):
        search_logs(tenant_id, LogQuery(*WINDOW, trace_id="xyz"))


def test_text_matches_whole_words_and_phrases(insert_requests: Any, tenant_id: str) -> None:
    req = full_logs_request(service="checkout")
    records = req.resource_logs[0].scope_logs[0].log_records
    bodies = ["payment pay_9f86d081884c failed", "cart c5dc1ebc-a9f8-4e93 loaded", "payment retried"]
    for record, body in zip(records, bodies, strict=False):
        record.body.string_value = body
    insert_requests(Signal.LOGS, (tenant_id, req))

    def bodies_for(text: str) -> set[str]:
        page = search_logs(tenant_id, LogQuery(*WINDOW, limit=1000, text=text))
        return {r["body"]["stringValue"] for r in page.records if "stringValue" in r["body"]}

    assert bodies_for("pay_9f86d081884c") == {bodies[0]}
    assert bodies_for("payment") == {bodies[0], bodies[2]}
    assert bodies_for("paym") == set()  # a part of a word is not a word
    assert bodies_for("pay") == {bodies[0]}  # "_" separates words, as in the engine's tokens
    assert bodies_for("c5dc1ebc-a9f8-4e93") == {bodies[1]}
    assert bodies_for("a9f8 c5dc1ebc") == set()  # every word, and the phrase as written
    assert bodies_for("payment retried") == {bodies[2]}
    assert bodies_for("  ") == set()


def test_attribute_filters(insert_requests: Any, tenant_id: str) -> None:
    req = full_logs_request(service="checkout")
    records = req.resource_logs[0].scope_logs[0].log_records
    del records[3:]
    for n, record in enumerate(records):
        del record.attributes[:]
        record.attributes.add(key="http.route").value.string_value = f"/cart/{n % 2}"
        record.attributes.add(key="http.status_code").value.int_value = 200 + n
    insert_requests(Signal.LOGS, (tenant_id, req))

    def count(*attributes: tuple[str, str]) -> int:
        return len(search_logs(tenant_id, LogQuery(*WINDOW, attributes=attributes)).records)

    assert count(("http.route", "/cart/0")) == 2
    assert count(("http.route", "/cart/0"), ("http.status_code", "202")) == 1  # an int attribute
    assert count(("http.route", "/cart/1"), ("http.status_code", "202")) == 0
    assert count(("service.name", "checkout")) == 3  # resource attributes too
    with pytest.raises(ValueError, match="at most"):
        count(*[(f"k{n}", "v") for n in range(50)])


def test_pages_walk_spread_records_once_each(insert_requests: Any, tenant_id: str) -> None:
    """Records every 150 s over 50 minutes, two sharing a timestamp: pages of 3 walk them newest first,
    once each."""
    req = full_logs_request(service="checkout")
    records = req.resource_logs[0].scope_logs[0].log_records
    template = records[0]
    del records[:]
    for i in range(20):
        record = records.add()
        record.CopyFrom(template)
        record.time_unix_nano = BASE_NS + i * 150 * NS
    records.add().CopyFrom(records[5])
    insert_requests(Signal.LOGS, (tenant_id, req))
    seen = walk_pages(tenant_id, limit=3)
    assert seen == sorted((str(r.time_unix_nano) for r in records), reverse=True)
    assert len(seen) == 21
