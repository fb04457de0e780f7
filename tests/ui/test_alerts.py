"""The alert pages: an editor writes a rule through the form, a burst of failing payments makes it fire and
the open alerts page shows it without a reload; the editor's other controls (validation messages,
channels, disable, delete); a viewer reads everything and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import OwnTenant, Session, shot

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

LIVE_TIMEOUT = 30_000  # ms: ingest, a one-second evaluation tick, for_seconds, the WebSocket


def call(page: Page, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """The REST API from the signed-in page, as its scripts call it (session cookie, CSRF token, tenant)."""
    return page.evaluate(
        """async ([method, path, body]) => {
            const tenant = JSON.parse(document.getElementById("olly-config").textContent).tenant;
            const url = new URL(path, location.origin);
            url.searchParams.set("tenant", tenant);
            const resp = await fetch(url, {
                method,
                headers: {"Content-Type": "application/json",
                          "X-CSRFToken": document.querySelector('meta[name="csrf-token"]').content},
                body: body === null ? undefined : JSON.stringify(body),
            });
            return {status: resp.status, body: resp.status === 204 ? null : await resp.json()};
        }""",
        [method, path, body],
    )


def test_an_editor_writes_a_rule_that_fires_live(
    sign_in: Callable[..., Session], own_tenant: OwnTenant
) -> None:
    page = sign_in("eddie").open(f"/alerts/?tenant={own_tenant.name}")
    expect(page.locator("body[data-loaded=true]")).to_be_attached()
    page.get_by_role("link", name="New rule").click()
    page.wait_for_url("**/alerts/rules/new/")
    expect(page.locator("body[data-loaded=true]")).to_be_attached()

    page.get_by_label("Name", exact=True).fill("payments failing")
    page.get_by_label("Severity", exact=True).select_option("critical")
    page.get_by_label("Kind").select_option("threshold")
    page.get_by_label("Source").select_option("red")
    expect(page.get_by_label("Expression")).to_be_hidden()
    page.get_by_label("Service").fill("payments")
    page.get_by_label("Figure").select_option("error_rate")
    expect(page.get_by_label("Quantile")).to_be_hidden()
    page.get_by_label("Comparator").select_option(">")
    page.get_by_label("Threshold").fill("0.05")
    page.get_by_label("Window (s)").fill("5")
    page.get_by_label("Pending for (s)").fill("1")
    page.get_by_label("Labels").fill("team=payments")
    shot(page, "alert-rule-editor")
    page.get_by_role("button", name="Create rule").click()
    page.wait_for_url("**/alerts/")

    row = page.locator("#rules tr", has_text="payments failing")
    expect(row).to_contain_text("error rate > 5.00% over 5s for 1s")
    expect(row.locator("td").nth(5)).to_have_text("ok")
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("#now")).to_contain_text("Nothing is firing or pending")

    page.evaluate("window.notReloaded = true")
    own_tenant.traffic.send(requests=20, error_every=2)
    firing = page.locator("#now li[data-state=firing]", has_text="payments failing")
    expect(firing).to_be_visible(timeout=LIVE_TIMEOUT)
    expect(firing).to_contain_text("service=payments")
    assert page.evaluate("window.notReloaded === true"), "the alert moved in without a reload"
    shot(page, "alerts")

    history = page.locator("#history tbody tr", has_text="payments failing")
    expect(history.and_(page.locator("[data-to=pending]"))).to_have_count(1)
    expect(history.and_(page.locator("[data-to=firing]"))).to_have_count(1)
    expect(history.and_(page.locator("[data-to=firing]"))).to_contain_text("pending → firing")

    # The history outlives the page: what the live stream showed is what the API recorded.
    page.reload()
    expect(page.locator("#history tbody tr[data-to=firing]", has_text="payments failing")).to_be_visible()


def test_the_editor_shows_the_api_message_beside_the_field(sign_in: Callable[..., Session]) -> None:
    session = sign_in("eddie")
    page = session.open("/alerts/rules/new/")
    expect(page.locator("body[data-loaded=true]")).to_be_attached()
    page.get_by_label("Name", exact=True).fill("no service given")
    page.get_by_role("button", name="Create rule").click()
    expect(page.locator("#form-error")).to_contain_text("service")
    expect(page.get_by_label("Service")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Service")).to_be_focused()
    assert "/alerts/rules/new/" in page.url, "a refused rule keeps the form"

    # Fields follow the kind and source: a PromQL rule asks for its expression, an anomaly for a z-score.
    page.get_by_label("Source").select_option("promql")
    expect(page.get_by_label("Expression")).to_be_visible()
    expect(page.get_by_label("Service")).to_be_hidden()
    page.get_by_label("Kind").select_option("anomaly")
    expect(page.get_by_label("z-score")).to_be_visible()
    expect(page.get_by_label("Threshold")).to_be_hidden()
    page.get_by_label("Expression").fill("up[5m]")
    page.get_by_role("button", name="Create rule").click()
    expect(page.locator("#form-error")).to_contain_text("expr")
    expect(page.get_by_label("Expression")).to_have_attribute("aria-invalid", "true")
    session.console.expect("400")


def test_an_editor_picks_channels_disables_and_deletes_a_rule(sign_in: Callable[..., Session]) -> None:
    page = sign_in("eddie").open("/alerts/")
    made = call(
        page,
        "POST",
        "/api/v1/alerts/channels",
        {"name": "on-call mail", "kind": "email", "recipients": ["oncall@example.com"]},
    )
    assert made["status"] == 201, made
    channel = made["body"]["id"]

    page.goto(page.url.replace("/alerts/", "/alerts/rules/new/"))
    expect(page.locator("body[data-loaded=true]")).to_be_attached()
    page.get_by_label("Name", exact=True).fill("inventory slow")
    page.get_by_label("Service").fill("inventory")
    page.get_by_label("Figure").select_option("latency")
    page.get_by_label("Quantile").fill("0.99")
    page.get_by_label("Threshold").fill("60000")
    page.get_by_label("Channels").select_option(label="on-call mail (email)")
    page.get_by_role("button", name="Create rule").click()
    page.wait_for_url("**/alerts/")
    page.locator("#rules").get_by_role("link", name="Edit inventory slow").click()
    expect(page.locator("body[data-loaded=true]")).to_be_attached()
    rule_url = page.url

    expect(page.get_by_label("Channels")).to_have_values([str(channel)])
    expect(page.get_by_label("Quantile")).to_have_value("0.99")
    page.get_by_role("button", name="Disable").click()
    expect(page.locator("#flash")).to_contain_text("Rule disabled")
    expect(page.get_by_label("Enabled (evaluated)")).not_to_be_checked()
    page.goto(rule_url)
    expect(page.get_by_role("button", name="Enable", exact=True)).to_be_visible()

    page.get_by_role("button", name="Delete").click()
    dialog = page.locator("#confirm-delete")
    expect(dialog).to_be_visible()
    page.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert page.url == rule_url, "cancel keeps the rule"
    page.get_by_role("button", name="Delete").click()
    page.get_by_role("button", name="Delete rule").click()
    page.wait_for_url("**/alerts/")
    expect(page.locator("body[data-loaded=true]")).to_be_attached()
    expect(page.locator("#rules")).not_to_contain_text("inventory slow")


def test_a_viewer_reads_rules_but_cannot_change_them(sign_in: Callable[..., Session]) -> None:
    eddie = sign_in("eddie").open("/alerts/")
    made = call(
        eddie,
        "POST",
        "/api/v1/alerts/rules",
        {"name": "checkout absent", "kind": "absence", "service": "checkout", "window_seconds": 3600},
    )
    assert made["status"] == 201, made

    session = sign_in("vera")
    page = session.open("/alerts/")
    expect(page.locator("body[data-loaded=true]")).to_be_attached()
    expect(page.locator("#rules tr", has_text="checkout absent")).to_contain_text("no data for 3600s")
    expect(page.get_by_role("link", name="New rule")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit checkout absent")).to_have_count(0)

    page.locator("#rules").get_by_role("link", name="checkout absent").click()
    expect(page.locator("body[data-loaded=true]")).to_be_attached()
    expect(page.locator("#readonly")).to_contain_text("viewer")
    expect(page.get_by_label("Name", exact=True)).to_have_value("checkout absent")
    expect(page.get_by_label("Name", exact=True)).to_be_disabled()
    expect(page.get_by_label("Service")).to_be_disabled()
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)

    refused = call(page, "POST", "/api/v1/alerts/rules", {"name": "sneaky", "service": "checkout"})
    assert refused["status"] == 403, refused
    assert "editor" in refused["body"]["error"], refused
    session.console.expect("403")


def test_a_rule_of_another_tenant_is_not_found(sign_in: Callable[..., Session]) -> None:
    session = sign_in("vera")
    page = session.open("/alerts/rules/999999/")
    expect(page.locator("body")).to_contain_text("Not Found")
    session.console.expect("404")
