"""The service overview and a service's page, on traffic sent by the OpenTelemetry SDK."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import Session, UiServer, shot
from tests.ui.traffic import SERVICES

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

TRACE_URL = re.compile(r"/traces/[0-9a-f]{32}/$")


def rows(page: Page) -> list[str]:
    return page.locator("#services tbody tr").evaluate_all("rows => rows.map(r => r.dataset.service)")


def cell(page: Page, service: str, column: int) -> str:
    return page.locator(f'#services tbody tr[data-service="{service}"] td').nth(column).inner_text()


def test_overview_lists_every_service_with_its_figures(sign_in: Callable[..., Session], ui: UiServer) -> None:
    page = sign_in("vera").open("/services/")
    table = page.locator("#services table")
    expect(table.locator("tbody tr")).to_have_count(len(SERVICES))
    assert sorted(rows(page)) == sorted(SERVICES)
    for service in SERVICES:
        assert cell(page, service, 1).strip() not in ("0.00/min", "\u2013"), f"{service} has no request rate"
        expect(
            page.locator(f'#services tr[data-service="{service}"] .sparkline canvas').first
        ).to_be_attached()
    assert cell(page, "payments", 2).strip() == "20.0%"  # every fifth charge was declined
    assert cell(page, "inventory", 2).strip() == "0%"

    page.get_by_role("button", name="Error rate").click()
    expect(page.locator("#services th[aria-sort=descending]")).to_have_text(re.compile("Error rate"))
    # the frontend marks its request failed when the charge is declined: both fail one in five
    assert sorted(rows(page)[:2]) == ["frontend", "payments"]
    shot(page, "services-overview")

    page.fill("#service-search", "pay")
    expect(page.locator("#services tbody tr")).to_have_count(1)
    page.fill("#service-search", "nothing like it")
    expect(page.locator("#services .empty")).to_contain_text("No service matches")
    page.fill("#service-search", "")
    expect(page.locator("#services tbody tr")).to_have_count(len(SERVICES))
    # the sort survived the filter
    expect(page.locator("#services th[aria-sort=descending]")).to_have_text(re.compile("Error rate"))


def test_keyboard_reaches_a_service_from_the_search_box(sign_in: Callable[..., Session]) -> None:
    page = sign_in("vera").open("/services/")
    expect(page.locator("#services tbody tr")).to_have_count(len(SERVICES))
    page.keyboard.press("/")
    expect(page.locator("#service-search")).to_be_focused()
    page.keyboard.type("inventory")
    expect(page.locator("#services tbody tr")).to_have_count(1)
    # search box → four sort buttons → the only service link
    for _ in range(5):
        page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("inventory")
    page.keyboard.press("Enter")
    page.wait_for_url("**/services/inventory/**")
    expect(page.locator("#service-name")).to_have_text("inventory")


def test_service_page_charts_operations_errors_and_slowest(
    sign_in: Callable[..., Session], ui: UiServer
) -> None:
    page = sign_in("olly").open("/services/")
    page.get_by_role("link", name="payments", exact=True).click()
    page.wait_for_url("**/services/payments/**")
    expect(page.locator("#service-name")).to_have_text("payments")
    for chart in ("rate", "errors", "latency", "op-rate", "op-latency"):
        expect(page.locator(f"#chart-{chart} canvas")).to_be_attached()
    expect(page.locator("#errors-figure")).to_have_text("20.0%")

    charge = page.locator('#operations tr[data-operation="charge"]')
    expect(charge).to_be_visible()
    expect(charge.locator("td").nth(1)).to_have_text("40")
    expect(charge.locator("td").nth(3)).to_have_text("20.0%")

    expect(page.locator("#top-errors")).to_contain_text("card declined by issuer")
    expect(page.locator("#top-errors tbody tr").first.locator("td").first).to_have_text("8")

    expect(page.locator("#logs-link")).to_have_attribute("href", re.compile(r"^/logs/\?service=payments"))
    expect(page.locator("#traces-link")).to_have_attribute("href", re.compile(r"^/traces/\?service=payments"))

    slowest = page.locator("#slowest tbody a.trace-link")
    expect(slowest).to_have_count(10)
    first = slowest.first.get_attribute("title")
    assert first in ui.sent.trace_ids
    shot(page, "service-page")
    slowest.first.click()
    page.wait_for_url(TRACE_URL)
    assert page.url.endswith(f"/traces/{first}/")


def test_a_service_without_traffic_says_so(sign_in: Callable[..., Session]) -> None:
    page = sign_in("vera").open("/services/nobody-here/")
    expect(page.locator("#chart-rate")).to_contain_text("No requests in this range.")
    expect(page.locator("#operations")).to_contain_text("No operations in this range.")
    expect(page.locator("#top-errors")).to_contain_text("No errors in this range.")
    expect(page.locator("#slowest")).to_contain_text("No traces in this range.")
