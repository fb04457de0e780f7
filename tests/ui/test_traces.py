"""Trace search (/traces/) and the trace page's waterfall (/traces/<id>/), in Chromium against `serve`."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode
from playwright.sync_api import Page, expect

from tests.e2e.conftest import wait_for
from tests.ui.conftest import Session, UiServer, shot, tenant_of_its_own

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

BIG_TRACE_SPANS = 5000
MS = 1_000_000


def signed_in(sign_in: Callable[..., Session], user: str) -> Session:
    """A signed-in session; what the landing page (/services/, tested on its own) logged is not ours."""
    session = sign_in(user)
    session.console.errors.clear()
    return session


def row_ids(page: Page) -> list[str]:
    return page.locator("#results tbody tr").evaluate_all("rows => rows.map(r => r.dataset.traceId)")


def test_search_by_service_and_status_lists_the_error_traces(
    sign_in: Callable[..., Session], ui: UiServer
) -> None:
    session = signed_in(sign_in, "vera")
    page = session.open("/traces/?service=payments&status=error")
    expect(page.locator("#f-service")).to_have_value("payments")
    expect(page.locator("#f-status")).to_have_value("error")
    expect(page.locator("#results table")).to_be_visible()
    found = row_ids(page)
    sent = set(ui.sent.trace_ids)
    assert {t for t in found if t in sent} == set(ui.sent.error_trace_ids), "exactly the failed checkouts"
    for cell in page.locator("#results tbody tr td:nth-child(5)").all():
        assert int(cell.inner_text()) >= 1, "every listed trace has an error span"
    expect(page.locator("#scatter canvas").first).to_be_attached()
    shot(page, "traces-search")

    first = ui.sent.error_trace_ids[-1]
    page.locator(f'#results a[data-trace-id="{first}"]').click()
    page.wait_for_url(f"**/traces/{first}/")
    expect(page.locator(".wf-row")).to_have_count(7)


def test_the_form_keeps_its_state_in_the_url_and_shows_errors(
    sign_in: Callable[..., Session], ui: UiServer
) -> None:
    session = signed_in(sign_in, "olly")
    page = session.open("/traces/")
    expect(page.locator("#results table")).to_be_visible()
    expect(page.locator("#f-service option", has_text="checkout")).to_be_attached()
    page.select_option("#f-service", "checkout")
    page.wait_for_url("**/traces/?*service=checkout*")
    expect(page.locator("#f-operations option[value='POST /checkout']")).to_be_attached()
    page.fill("#f-operation", "POST /checkout")
    page.fill("#f-attr", "deployment.environment=test")
    page.press("#f-attr", "Enter")
    expect(page.locator("#f-attrs li")).to_have_count(1)
    page.wait_for_url("**attr.deployment.environment=test*")
    assert "operation=POST+%2Fcheckout" in page.url or "operation=POST%20%2Fcheckout" in page.url
    expect(page.locator("#results tbody tr").first).to_be_visible()
    found = set(row_ids(page))
    assert set(ui.sent.trace_ids) <= found, "every checkout request passed through checkout's server span"

    page.fill("#f-min", "1h")
    page.click("#trace-search button[type=submit]")
    expect(page.locator("#results .empty")).to_contain_text("No traces in this range match")

    page.fill("#f-min", "soon")
    page.click("#trace-search button[type=submit]")
    expect(page.locator("#flash .message.error")).to_contain_text("min_duration")
    session.console.expect("400")

    shared = page.url  # the search survives a reload from its URL
    page.goto(shared)
    expect(page.locator("#f-service")).to_have_value("checkout")
    expect(page.locator("#f-operation")).to_have_value("POST /checkout")
    expect(page.locator("#f-min")).to_have_value("soon")
    expect(page.locator("#f-attrs li code")).to_have_text("deployment.environment=test")
    session.console.expect("400")


def test_the_waterfall_nests_marks_and_details_spans(sign_in: Callable[..., Session], ui: UiServer) -> None:
    trace_id = ui.sent.error_trace_ids[0]
    session = signed_in(sign_in, "vera")
    page = session.open(f"/traces/{trace_id}/")
    expect(page.locator("body")).to_have_attribute("data-rendered", "trace")
    rows = page.locator(".wf-row")
    expect(rows).to_have_count(7)
    expect(page.locator("#span-count")).to_have_text("7")
    expect(page.locator("#trace-title")).to_have_text("frontend: GET /checkout")
    shape = rows.evaluate_all(
        "rs => rs.map(r => [Number(r.getAttribute('aria-level')), r.querySelector('.svc-name').textContent,"
        " r.querySelector('.op-name').textContent])"
    )
    assert shape == [
        [1, "frontend", "GET /checkout"],
        [2, "frontend", "POST checkout"],
        [3, "checkout", "POST /checkout"],
        [4, "checkout", "GET inventory"],
        [5, "inventory", "reserve"],
        [4, "checkout", "POST payments"],
        [5, "payments", "charge"],
    ]
    critical = page.locator('.wf-row[data-critical="true"] .op-name').all_inner_texts()
    # checkout calls inventory, then payments, one after the other: every span is on the path
    assert critical == [name for _, _, name in shape]
    expect(page.locator(".wf-row.critical .bar")).to_have_count(7)
    errors = page.locator(".wf-row:has(.err-mark) .op-name").all_inner_texts()
    assert errors == ["GET /checkout", "POST checkout", "POST payments", "charge"]
    expect(page.locator("#error-count")).to_have_text("4")
    expect(page.locator("#trace-logs")).to_have_attribute("href", f"/logs/?trace_id={trace_id}")

    page.locator(".wf-row", has=page.locator(".op-name", has_text="charge")).click()
    details = page.locator("#span-details")
    expect(details.locator("#details-title")).to_have_text("charge")
    expect(details.locator(".event-name")).to_have_text("card declined")
    expect(details).to_contain_text("card.brand")
    expect(details).to_contain_text("card declined by issuer")
    expect(details.locator("table.kv").last).to_contain_text("service.name")
    expect(details.locator("table.kv").last).to_contain_text("payments")
    expect(details.locator(".span-logs")).to_have_attribute(
        "href", f"/logs/?trace_id={trace_id}&service=payments"
    )
    shot(page, "trace-waterfall")


def test_the_waterfall_is_driven_by_the_keyboard(sign_in: Callable[..., Session], ui: UiServer) -> None:
    page = signed_in(sign_in, "vera").open(f"/traces/{ui.sent.trace_ids[0]}/")
    expect(page.locator("body")).to_have_attribute("data-rendered", "trace")
    rows = page.locator(".wf-row")
    in_order = rows.evaluate_all("rows => rows.map(r => r.dataset.index)")
    assert in_order == [str(i) for i in range(7)]
    rows.first.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    focused = page.locator(".wf-row:focus")
    expect(focused.locator(".op-name")).to_have_text("POST /checkout")
    page.keyboard.press("ArrowLeft")  # collapse checkout's subtree
    expect(focused).to_have_attribute("aria-expanded", "false")
    expect(page.locator(".wf-row:visible")).to_have_count(3)
    page.keyboard.press("ArrowDown")  # nothing below the collapsed subtree: stays
    expect(page.locator(".wf-row:focus .op-name")).to_have_text("POST /checkout")
    page.keyboard.press("ArrowRight")
    expect(page.locator(".wf-row:visible")).to_have_count(7)
    page.keyboard.press("ArrowRight")  # to the first child
    expect(page.locator(".wf-row:focus .op-name")).to_have_text("GET inventory")
    page.keyboard.press("ArrowLeft")  # collapse GET inventory
    page.keyboard.press("ArrowDown")
    expect(page.locator(".wf-row:focus .op-name")).to_have_text("POST payments")
    page.keyboard.press("Enter")
    expect(page.locator("#details-title")).to_have_text("POST payments")
    expect(page.locator("#span-details")).to_contain_text("client")
    # a subtree in the middle put back: its rows go between their neighbours, in the tree's order (what
    # assistive technology reads), not after the last row
    inventory = page.locator(".wf-row", has=page.locator(".op-name", has_text="GET inventory"))
    inventory.locator("[data-toggle]").click()
    expect(page.locator(".wf-row:visible")).to_have_count(7)
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.index)") == in_order
    page.click("#collapse-all")
    expect(page.locator(".wf-row:visible")).to_have_count(1)
    page.click("#expand-all")
    expect(page.locator(".wf-row:visible")).to_have_count(7)
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.index)") == in_order


def test_the_critical_path_follows_the_latest_ending_children(sign_in: Callable[..., Session]) -> None:
    """root 0-100 ms with children a 0-60 (a1 0-50, a2 10-55), b 20-90, c 70-95, d 96-99: d ends last; c
    ends before d starts; b does not end before c starts (it ran alongside c), a does; inside a, a2 ends
    last and a1 does not end before a2 starts. A span whose parent is missing is a root of its own."""
    page = signed_in(sign_in, "vera").open("/traces/")
    critical = page.evaluate(
        """async () => {
          const { buildTrace } = await import("olly/trace-model.js");
          const base = 1700000000000000000n;
          const span = (id, parent, start, end) => ({
            spanId: id, parentSpanId: parent, name: id, serviceName: "s", status: { code: 0 },
            startTimeUnixNano: String(base + BigInt(start) * 1000000n),
            endTimeUnixNano: String(base + BigInt(end) * 1000000n),
          });
          const t = buildTrace([
            span("b", "root", 20, 90), span("root", "", 0, 100), span("a", "root", 0, 60),
            span("a1", "a", 0, 50), span("a2", "a", 10, 55), span("c", "root", 70, 95),
            span("d", "root", 96, 99), span("orphan", "gone", 1, 2),
          ]);
          return {
            order: t.nodes.map((n) => `${n.id}:${n.depth}`),
            critical: t.nodes.filter((n) => n.critical).map((n) => n.id),
            duration: t.duration,
          };
        }"""
    )
    assert critical["order"] == ["root:0", "a:1", "a1:2", "a2:2", "b:1", "c:1", "d:1", "orphan:0"]
    assert critical["critical"] == ["root", "a", "a2", "c", "d"]
    assert critical["duration"] == 100


def test_an_unknown_or_malformed_trace_id_says_so(sign_in: Callable[..., Session]) -> None:
    session = signed_in(sign_in, "vera")
    page = session.open(f"/traces/{'ab' * 16}/")
    expect(page.locator("#trace-missing")).to_contain_text("Trace not found")
    expect(page.locator("#trace-missing")).to_contain_text("abababab")
    expect(page.locator(".wf-row")).to_have_count(0)
    page = session.open("/traces/not-a-trace/")
    expect(page.locator(".message.error")).to_contain_text("32 hexadecimal characters")
    session.console.expect("404")


def send_big_trace(ui: UiServer, ingest_key: str, spans: int) -> str:
    """One trace of ``spans`` spans: a root, shards of 100 spans under it, rows under each shard."""
    provider = TracerProvider(resource=Resource.create({"service.name": "bulk-loader"}))
    exporter = OTLPSpanExporter(
        endpoint=f"{ui.server.otlp_http}/v1/traces", headers={"Authorization": f"Bearer {ingest_key}"}
    )
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=10_000, max_export_batch_size=1000)
    )
    tracer = provider.get_tracer("tests.ui.big")
    start = trace_start = time.time_ns() - 60 * 1_000_000_000
    root = tracer.start_span("import batch", start_time=trace_start)
    parent = trace.set_span_in_context(root)
    left = spans - 1
    shard = 0
    while left:
        shard_span = tracer.start_span(f"import shard {shard}", context=parent, start_time=start)
        left -= 1
        inside = trace.set_span_in_context(shard_span)
        for row in range(min(99, left)):
            child = tracer.start_span("insert row", context=inside, start_time=start + row * 100_000)
            child.set_attribute("row", row)
            if shard == 7 and row == 42:
                child.set_status(Status(StatusCode.ERROR, "duplicate key"))
            child.end(end_time=start + row * 100_000 + 90_000)
            left -= 1
        start += 10 * MS
        shard_span.end(end_time=start)
        shard += 1
    root.end(end_time=start + MS)
    trace_id = format(root.get_span_context().trace_id, "032x")
    assert provider.force_flush(30_000), "the span exporter did not flush"
    provider.shutdown()
    return trace_id


@dataclass(frozen=True)
class BigTrace:
    trace_id: str
    tenant: str


@pytest.fixture(scope="module")
def big_trace(ui: UiServer) -> Iterator[BigTrace]:
    """Sent to a tenant of its own: its service would show in the shared tenant's lists."""
    with tenant_of_its_own(ui) as tenant:
        trace_id = send_big_trace(ui, tenant.ingest_key, BIG_TRACE_SPANS)
        key = ui.server.manage("tenant", "create-key", tenant.name, "--kind", "api", "--json").stdout
        found = "/api/v1/traces?service=bulk-loader&limit=5"
        wait_for(
            lambda: any(
                t["trace_id"] == trace_id and t["span_count"] >= BIG_TRACE_SPANS
                for t in ui.server.api(found, json.loads(key)["key"])["traces"]
            ),
            timeout=60,
            interval=0.5,
        )
        yield BigTrace(trace_id, tenant.name)


def test_a_trace_of_5000_spans_renders_as_a_virtual_list(
    sign_in: Callable[..., Session], big_trace: BigTrace
) -> None:
    page = signed_in(sign_in, "vera").open(f"/traces/{big_trace.trace_id}/?tenant={big_trace.tenant}")
    expect(page.locator("body")).to_have_attribute("data-rendered", "trace", timeout=30_000)
    expect(page.locator("#span-count")).to_have_text("5,000")
    expect(page.locator("#error-count")).to_have_text("1")
    marks = page.evaluate("performance.getEntriesByName('olly:trace-rendered').map(m => m.startTime)")
    assert len(marks) == 1, "one first render"
    print(f"5000 spans rendered {marks[0]:.0f} ms after navigation start")
    # the tree is as tall as every row, but only the rows near the viewport are in the document
    row_height = page.locator(".wf-row").first.evaluate("el => el.getBoundingClientRect().height")
    tree_height = page.locator(".wf-rows").evaluate("el => el.getBoundingClientRect().height")
    assert tree_height == pytest.approx(BIG_TRACE_SPANS * row_height, abs=1)
    assert 10 < page.locator(".wf-row").count() < 200
    # position among siblings, as a virtual tree must tell (the root, then shards of a shard span and 99 rows)
    shards = -(-(BIG_TRACE_SPANS - 1) // 100)
    expect(page.locator('.wf-row[data-index="0"]')).to_have_attribute("aria-setsize", "1")
    expect(page.locator('.wf-row[data-index="1"]')).to_have_attribute("aria-setsize", str(shards))
    expect(page.locator('.wf-row[data-index="2"]')).to_have_attribute("aria-setsize", "99")

    # scrolled to the middle, the rows there are built and shown in order
    waterfall = page.locator("#waterfall")  # the scrolled box
    waterfall.evaluate("(el, y) => { el.scrollTop = y; }", tree_height / 2)
    middle = page.locator('.wf-row[data-index="2500"]')  # the 99th row of shard 24
    expect(middle).to_be_in_viewport()
    expect(middle).to_have_attribute("aria-posinset", "99")
    expect(middle).to_have_attribute("aria-level", "3")
    assert page.locator(".wf-row").count() < 200
    # the row Tab enters the tree at stays in the document, scrolled away or not
    expect(page.locator('.wf-row[tabindex="0"]')).to_have_attribute("data-index", "0")

    waterfall.evaluate("el => { el.scrollTop = 0; }")
    page.locator('.wf-row[data-index="0"]').focus()
    page.keyboard.press("End")
    last = page.locator(".wf-row:focus")
    expect(last).to_have_attribute("data-index", str(BIG_TRACE_SPANS - 1))
    expect(last).to_be_in_viewport()
    expect(last.locator(".op-name")).to_have_text("insert row")
    page.keyboard.press("ArrowUp")
    expect(page.locator(".wf-row:focus")).to_have_attribute("data-index", str(BIG_TRACE_SPANS - 2))
    page.keyboard.press("Home")
    expect(page.locator(".wf-row:focus")).to_have_attribute("data-index", "0")
    expect(page.locator('.wf-row[data-index="0"]')).to_be_in_viewport()
    # collapsing the root leaves one row, and the tree one row tall
    page.keyboard.press("ArrowLeft")
    expect(page.locator(".wf-row")).to_have_count(1)
    assert page.locator(".wf-rows").evaluate("el => el.getBoundingClientRect().height") == pytest.approx(
        row_height, abs=1
    )
    page.keyboard.press("ArrowRight")
    expect(page.locator(f'.wf-row[data-index="{BIG_TRACE_SPANS - 1}"]')).to_have_count(0)
    assert 10 < page.locator(".wf-row").count() < 200
    shot(page, "trace-5000-spans")
