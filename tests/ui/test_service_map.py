"""The service map: the services the SDK traffic went through as Cytoscape nodes, their calls as edges
coloured by error rate, a click on a node opening the service, and the same facts in tables for the
keyboard."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import Session, UiServer, shot
from tests.ui.traffic import SERVICES

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def open_map(session: Session) -> Page:
    page = session.open("/service-map/?range=1h")
    expect(page.locator("body[data-loaded=true]")).to_be_attached()
    return page


def graph(page: Page) -> dict[str, Any]:
    return page.evaluate(
        """() => {
            const cy = window.ollyServiceMap;
            return {
                nodes: cy.nodes().map((n) => ({id: n.id(), errorRate: n.data("errorRate"),
                                               ring: n.hasClass("high-errors")})),
                edges: cy.edges().map((e) => ({source: e.source().id(), target: e.target().id(),
                                               errorRate: e.data("errorRate"),
                                               color: e.style("line-color")})),
            };
        }"""
    )


def rgb(color: str) -> tuple[int, int, int]:
    match = re.match(r"rgb\((\d+),\s*(\d+),\s*(\d+)\)", color)
    assert match, f"not an rgb colour: {color}"
    r, g, b = (int(x) for x in match.groups())
    return r, g, b


def test_the_map_shows_services_and_calls_coloured_by_errors(
    sign_in: Callable[..., Session], ui: UiServer
) -> None:
    page = open_map(sign_in("vera"))
    found = graph(page)
    assert {n["id"] for n in found["nodes"]} >= set(SERVICES)
    edges = {(e["source"], e["target"]): e for e in found["edges"]}
    assert {("frontend", "checkout"), ("checkout", "payments"), ("checkout", "inventory")} <= set(edges)

    payments = edges[("checkout", "payments")]
    inventory = edges[("checkout", "inventory")]
    assert payments["errorRate"] == pytest.approx(0.2, abs=0.05), "every 5th payment fails"
    assert inventory["errorRate"] == 0
    red, green, _ = rgb(payments["color"])
    assert red > 150, f"the failing edge is drawn red, not {payments['color']}"
    assert red > 2 * green, f"the failing edge is drawn red, not {payments['color']}"
    red, green, _ = rgb(inventory["color"])
    assert green > red, f"the healthy edge is drawn green, not {inventory['color']}"
    rings = {n["id"] for n in found["nodes"] if n["ring"]}
    assert "payments" in rings, "a red ring on the service whose requests fail"
    assert "inventory" not in rings

    # The same facts for the keyboard: a row per call with links to both services.
    row = page.locator('#edge-table tr[data-edge="checkout→payments"]')
    expect(row).to_contain_text("20")
    expect(row.get_by_role("link", name="payments")).to_have_attribute("href", "/services/payments/")
    expect(page.locator("#service-table").get_by_role("link", name="inventory")).to_be_visible()
    shot(page, "service-map")


def test_clicking_a_node_opens_its_service(sign_in: Callable[..., Session], ui: UiServer) -> None:
    page = open_map(sign_in("vera"))
    position = page.evaluate(
        """() => {
            const node = window.ollyServiceMap.getElementById("payments");
            const box = document.getElementById("map").getBoundingClientRect();
            const at = node.renderedPosition();
            return {x: box.left + at.x, y: box.top + at.y};
        }"""
    )
    page.mouse.click(position["x"], position["y"])
    page.wait_for_url("**/services/payments/**")


def test_an_empty_range_says_so(sign_in: Callable[..., Session], ui: UiServer) -> None:
    session = sign_in("olly")
    page = session.open("/service-map/?tenant=second")
    expect(page.locator("body[data-loaded=true]")).to_be_attached()
    expect(page.locator("#map-empty")).to_be_visible()
    expect(page.locator("#service-table")).to_contain_text("Nothing in this range")
