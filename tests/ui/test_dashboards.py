"""Dashboards in the browser: an owner builds one with a PromQL time series over metrics from the
OpenTelemetry SDK, a SQL table over the spans and a stat, saves, and the reloaded page renders all
three; query errors show the server's message; viewers get no edit controls and the API refuses them;
a save in one page shows up in another without a reload, and Live brings pushed panel data."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import wait_for
from tests.ui.conftest import Session, UiServer, shot

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ORDERS = "shop_orders_total"  # the SDK's counter shop.orders as Prometheus names it
SPANS_SQL = "SELECT service_name, count() AS spans FROM spans GROUP BY service_name ORDER BY service_name"


@pytest.fixture(scope="module")
def api_key(ui: UiServer) -> str:
    done = ui.server.manage(
        "tenant", "create-key", ui.tenant, "--kind", "api", "--scopes", "read,write", "--json"
    )
    return str(json.loads(done.stdout)["key"])


@pytest.fixture(scope="module")
def orders(ui: UiServer, api_key: str) -> Iterator[None]:
    """A counter per service exported by the SDK's metric reader, until PromQL sees it."""
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(
            endpoint=f"{ui.server.otlp_http}/v1/metrics", headers={"Authorization": f"Bearer {ui.ingest_key}"}
        ),
        export_interval_millis=60_000,
    )
    provider = MeterProvider(resource=Resource.create({"service.name": "checkout"}), metric_readers=[reader])
    counter = provider.get_meter("tests.ui").create_counter("shop.orders", unit="{order}")
    for n in range(3):
        counter.add(5 + n, {"shop.region": "eu"})
        counter.add(2, {"shop.region": "us"})
        provider.force_flush()
        time.sleep(0.2)
    wait_for(lambda: ui.server.api(f"/prometheus/api/v1/query?query={ORDERS}", api_key)["data"]["result"])
    yield
    provider.shutdown()


def create(ui: UiServer, key: str, name: str, panels: list[dict[str, Any]]) -> dict[str, Any]:
    body = json.dumps({"name": name, "panels": panels}).encode()
    request = urllib.request.Request(
        f"{ui.url}/api/v1/dashboards",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


def panel(page: Page, title: str) -> Locator:
    return page.locator(".dash-panel", has=page.locator("h2", has_text=title))


def fill_panel(section: Locator, title: str, kind: str, language: str, query: str, unit: str = "") -> None:
    section.get_by_label("Title").fill(title)
    section.get_by_label("Type").select_option(kind)
    section.get_by_label("Language").select_option(language)
    section.get_by_label("Unit").fill(unit)
    section.get_by_label("Query").fill(query)


def test_an_owner_builds_a_dashboard_and_its_panels_render(
    sign_in: Callable[..., Session], ui: UiServer, orders: None
) -> None:
    page = sign_in("olly").open("/dashboards/")
    page.click("#new-dashboard")
    page.fill("#new-name", "Checkout health")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/dashboards/\d+/"))
    expect(page.locator("#editbar")).to_be_visible()
    expect(page.locator("#edit-name")).to_have_value("Checkout health")

    cards = page.locator(".dash-panel")
    page.click("#add-panel")
    fill_panel(cards.nth(0), "Orders", "timeseries", "promql", f"sum by (shop_region) ({ORDERS})", "orders")
    page.click("#add-panel")
    fill_panel(cards.nth(1), "Spans per service", "table", "sql", SPANS_SQL)
    page.click("#add-panel")
    fill_panel(cards.nth(2), "Orders so far", "stat", "promql", f"sum({ORDERS})", "orders")
    page.fill("#edit-description", "What the shop did in the last hour")
    for n in range(3):
        cards.nth(n).get_by_role("button", name="Run").click()
    expect(cards.nth(1).locator("tbody tr")).to_have_count(4)
    expect(cards.nth(0).locator("canvas").first).to_be_attached()
    expect(cards.nth(2).locator(".stat")).to_be_visible()
    shot(page, "dashboard-edit")
    page.click("#save")
    expect(page.locator("#flash")).to_contain_text("Saved (version 2)")
    expect(page.locator("#editbar")).to_be_hidden()

    page.select_option("#range", "5m")  # the counter's few points, at a resolution of seconds
    page.reload()
    expect(page.locator("#range")).to_have_value("5m")
    expect(page.locator("h1")).to_contain_text("Checkout health")
    expect(page.locator("#description")).to_have_text("What the shop did in the last hour")
    expect(cards).to_have_count(3)
    expect(panel(page, "Orders").locator("canvas").first).to_be_attached()
    expect(panel(page, "Orders").locator(".u-legend")).to_contain_text('shop_region="eu"')
    table = panel(page, "Spans per service")
    for service in ("checkout", "frontend", "inventory", "payments"):
        expect(table.locator("tbody")).to_contain_text(service)
    stat = panel(page, "Orders so far").locator(".stat")
    expect(stat).to_contain_text("orders")
    assert float(stat.get_attribute("data-value") or "0") == 24  # eu 5 + 6 + 7, us 2 + 2 + 2
    shot(page, "dashboard-view")

    page.goto(f"{ui.url}/dashboards/")
    row = page.locator("#dashboard-list tr", has_text="Checkout health")
    expect(row).to_contain_text("3")
    shot(page, "dashboards-list")
    row.get_by_role("link").click()
    expect(cards).to_have_count(3)


def test_query_errors_show_the_servers_message(
    sign_in: Callable[..., Session], ui: UiServer, api_key: str
) -> None:
    board = create(
        ui,
        api_key,
        "Errors on purpose",
        [{"title": "ok", "type": "stat", "language": "sql", "query": "SELECT 1"}],
    )
    session = sign_in("eddie")
    page = session.open(f"/dashboards/{board['id']}/?edit=1")
    section = page.locator(".dash-panel").first
    expect(section.locator(".stat")).to_have_text("1")
    section.get_by_label("Query").fill("SELECT nope FROM spans")
    section.get_by_role("button", name="Run").click()
    expect(section.locator(".message.error")).to_contain_text("nope")

    section.get_by_label("Language").select_option("promql")
    section.get_by_label("Query").fill("sum(rate(")
    page.click("#save")
    expect(page.locator("#flash")).to_contain_text("panels: panel 1 (ok): PromQL:")
    expect(page.locator("#editbar")).to_be_visible()  # nothing saved, still editing
    session.console.expect("400", "422")


def test_viewers_see_no_edit_controls_and_the_api_refuses_them(
    sign_in: Callable[..., Session], ui: UiServer, api_key: str
) -> None:
    board = create(
        ui, api_key, "Read only", [{"title": "Spans", "type": "table", "language": "sql", "query": SPANS_SQL}]
    )
    session = sign_in("vera")
    page = session.open("/dashboards/")
    expect(page.locator("#dashboard-list")).to_contain_text("Read only")
    expect(page.locator("#new-dashboard")).to_have_count(0)
    page = session.open(f"/dashboards/{board['id']}/?edit=1")
    expect(page.locator(".dash-panel tbody tr")).to_have_count(4)
    expect(page.locator("#edit")).to_have_count(0)
    expect(page.locator("#editbar")).to_have_count(0)
    expect(page.locator(".panel-editor")).to_have_count(0)
    page.select_option("#range", "15m")
    page.click("#share")  # copied, or (no clipboard permission) shown in a read-only input
    link = page.locator("#share-link")
    expect(link).to_have_value(re.compile(rf"/dashboards/{board['id']}/\?tenant=.+&range=15m$"))
    if page.locator("#share-box").is_visible():
        expect(link).to_be_focused()
    else:
        expect(page.locator("#flash")).to_contain_text("Link copied")
    status = page.evaluate(
        """async ([id, tenant]) => {
            const token = document.querySelector('meta[name="csrf-token"]').content;
            const resp = await fetch(`/api/v1/dashboards/${id}?tenant=${tenant}`, {
                method: "PUT",
                headers: {"Content-Type": "application/json", "X-CSRFToken": token},
                body: JSON.stringify({name: "mine now", version: 1}),
            });
            return [resp.status, (await resp.json()).error];
        }""",
        [board["id"], ui.tenant],
    )
    assert status[0] == 403, status
    session.console.expect("403")


def test_a_save_shows_up_in_another_open_page_and_live_pushes_data(
    sign_in: Callable[..., Session], ui: UiServer, api_key: str
) -> None:
    board = create(
        ui, api_key, "Shared", [{"title": "Spans", "type": "table", "language": "sql", "query": SPANS_SQL}]
    )
    watcher = sign_in("vera").page
    frames: list[str] = []
    watcher.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    watcher.goto(f"{ui.url}/dashboards/{board['id']}/")
    expect(watcher.locator(".dash-panel tbody tr")).to_have_count(4)
    watcher.evaluate("window.notReloaded = true")

    editor = sign_in("eddie").open(f"/dashboards/{board['id']}/")
    editor.click("#edit")
    editor.locator(".dash-panel").first.get_by_label("Title").fill("Spans by service")
    editor.click("#add-panel")
    fill_panel(editor.locator(".dash-panel").nth(1), "Span count", "stat", "sql", "SELECT count() FROM spans")
    editor.click("#save")
    expect(editor.locator("#flash")).to_contain_text("Saved (version 2)")

    expect(watcher.locator(".dash-panel h2")).to_have_text(["Spans by service", "Span count"])
    expect(watcher.locator("#flash")).to_contain_text("someone saved version 2")
    expect(watcher.locator(".dash-panel .stat")).to_be_visible()
    assert watcher.evaluate("window.notReloaded") is True

    watcher.check("#live")

    # Playwright delivers frames while it is called: wait inside the page, check in between
    def pushed_data() -> bool:
        watcher.wait_for_timeout(200)
        return any('"panel.data"' in frame for frame in frames)

    wait_for(pushed_data)
    pushed = [json.loads(f) for f in frames if '"panel.data"' in f]
    assert {p["version"] for p in pushed} == {2}
    assert all("result" in p for p in pushed), pushed
