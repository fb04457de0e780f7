"""The log explorer: text search, the severity histogram, a record's details and trace link, the trace
page's link here, and the live tail (a viewer's too) with pause."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import Session, UiServer, shot

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_text_search_shows_the_declined_errors_and_not_the_rest(
    sign_in: Callable[..., Session], ui: UiServer
) -> None:
    page = sign_in("olly").open("/logs/")
    expect(page.locator(".log-record").first).to_be_visible()
    expect(page.locator("#histogram canvas").first).to_be_attached()
    shot(page, "logs-explorer")

    page.fill("#text", "declined")
    page.click("#log-filters button[type=submit]")
    rows = page.locator(".log-record")
    for body in ui.sent.log_bodies:
        expect(rows.filter(has_text=body)).to_have_count(1)
    expect(rows.filter(has_text="checkout started")).to_have_count(0)
    for n in range(rows.count()):
        expect(rows.nth(n).locator(".log-severity")).to_have_text("ERROR")
    assert "text=declined" in page.url, "the search is kept in the URL"
    expect(page.locator("#histogram canvas").first).to_be_attached()
    expect(page.locator("#histogram-note")).to_contain_text("records")


def test_a_record_expands_with_the_keyboard_and_links_to_its_trace(
    sign_in: Callable[..., Session], ui: UiServer
) -> None:
    page = sign_in("vera").open("/logs/?text=declined")
    record = page.locator(".log-record").first
    toggle = record.locator(".log-row")
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "true")
    details = record.locator(".log-details")
    expect(details).to_be_visible()
    expect(details).to_contain_text("order_id")
    expect(details).to_contain_text("service.name")
    link = details.locator("a.trace-link")
    trace_id = link.inner_text()
    assert trace_id in ui.sent.error_trace_ids
    expect(link).to_have_attribute("href", f"/traces/{trace_id}/")
    link.click()
    page.wait_for_url(f"**/traces/{trace_id}/")


def test_the_trace_pages_link_shows_that_traces_records(
    sign_in: Callable[..., Session], ui: UiServer
) -> None:
    trace_id = ui.sent.error_trace_ids[0]
    page = sign_in("vera").open(f"/logs/?trace_id={trace_id}")
    expect(page.locator("#trace_id")).to_have_value(trace_id)
    rows = page.locator(".log-record")
    expect(rows).to_have_count(2)  # "checkout started" in frontend, "payment failed" in payments
    expect(rows.filter(has_text="checkout started")).to_have_count(1)
    expect(rows.filter(has_text="card declined by issuer")).to_have_count(1)
    for n in range(2):
        expect(rows.nth(n)).to_have_attribute("data-trace", trace_id)


def test_the_service_filter_comes_from_the_url(sign_in: Callable[..., Session]) -> None:
    page = sign_in("vera").open("/logs/?service=frontend")
    expect(page.locator("#service")).to_have_value("frontend")
    rows = page.locator(".log-record")
    expect(rows.first).to_be_visible()
    expect(page.locator(".log-service").filter(has_not_text="frontend")).to_have_count(0)


def test_a_viewer_tails_new_records_and_can_pause(sign_in: Callable[..., Session], ui: UiServer) -> None:
    page = sign_in("vera").open("/logs/")
    expect(page.locator(".log-record").first).to_be_visible()
    page.click("#tail-toggle")
    expect(page.locator("#tail-toggle")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#tail-status")).to_contain_text("Tailing")

    body = f"live tail check {uuid.uuid4().hex}"
    ui.traffic.log("payments", body)
    ui.traffic.flush()
    first = page.locator(".log-record").first
    expect(first).to_contain_text(body, timeout=8_000)
    expect(first.locator(".log-service")).to_have_text("payments")
    shot(page, "logs-live-tail")

    page.click("#tail-pause")
    expect(page.locator("#tail-pause")).to_have_text("Resume")
    paused_body = f"while paused {uuid.uuid4().hex}"
    ui.traffic.log("payments", paused_body)
    ui.traffic.flush()
    expect(page.locator("#tail-status")).to_contain_text("1 new records waiting", timeout=8_000)
    expect(page.locator(".log-record").filter(has_text=paused_body)).to_have_count(0)
    page.click("#tail-pause")
    expect(page.locator(".log-record").first).to_contain_text(paused_body)

    page.click("#tail-toggle")
    expect(page.locator("#tail-toggle")).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#tail-status")).to_contain_text("stopped")


def test_the_tail_follows_the_filters(sign_in: Callable[..., Session], ui: UiServer) -> None:
    page = sign_in("olly").open("/logs/?service=checkout")
    page.click("#tail-toggle")
    expect(page.locator("#tail-status")).to_contain_text("Tailing")
    other = f"another service {uuid.uuid4().hex}"
    wanted = f"the filtered service {uuid.uuid4().hex}"
    ui.traffic.log("payments", other)
    ui.traffic.log("checkout", wanted)
    ui.traffic.flush()
    expect(page.locator(".log-record").first).to_contain_text(wanted, timeout=8_000)
    expect(page.locator(".log-record").filter(has_text=other)).to_have_count(0)
