"""The service map: the services the SDK traffic went through as Cytoscape nodes, their calls as edges
coloured by error rate, a click on a node opening the service, and the same facts in tables for the
keyboard."""

from __future__ import annotations

import itertools
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


def synthetic_topology(tiers: tuple[int, ...] = (1, 7, 42)) -> tuple[dict[str, Any], dict[str, Any]]:
    """A gateway, a tier of backends and a tier of leaves (50 services), plus a database most leaves call."""
    names = [[f"svc-{t}-{i}" for i in range(n)] for t, n in enumerate(tiers)]
    edges = []
    for upper, lower in itertools.pairwise(names):
        for i, callee in enumerate(lower):
            edges.append((upper[i % len(upper)], callee))
    edges += [(leaf, "postgres") for leaf in names[-1][::3]]
    duration = {"mean": 2e6, "p50": 1e6, "p95": 5e6, "p99": 9e6}
    topology = {
        "nodes": [{"service": s, "instrumented": True} for tier in names for s in tier]
        + [{"service": "postgres", "instrumented": False}],
        "edges": [
            {
                "caller": a,
                "callee": b,
                "instrumented": b != "postgres",
                "calls": 3600.0,
                "errors": 36.0 * (i % 4),
                "error_rate": 0.01 * (i % 4),
                "duration_ns": duration,
            }
            for i, (a, b) in enumerate(edges)
        ],
    }
    services = {
        "services": [
            {
                "service": s,
                "requests": 3600.0,
                "request_rate": 1.0,
                "errors": 0.0,
                "error_rate": 0.0,
                "duration_ns": {**duration, "p90": 4e6},
            }
            for tier in names
            for s in tier
        ]
    }
    return topology, services


def test_fifty_services_are_laid_out_without_overlaps(sign_in: Callable[..., Session]) -> None:
    session = sign_in("vera")
    topology, services = synthetic_topology()
    page = session.page
    page.route("**/api/v1/topology?*", lambda route: route.fulfill(json=topology))
    page.route("**/api/v1/services?*", lambda route: route.fulfill(json=services))
    page = open_map(session)
    shot(page, "service-map-50")
    boxes = page.evaluate(
        """() => window.ollyServiceMap.nodes().map((n) => {
            const b = n.renderedBoundingBox({includeLabels: false});
            return [n.id(), b.x1, b.y1, b.x2, b.y2];
        })"""
    )
    assert len(boxes) == 51
    width, height = page.evaluate(
        "() => [document.getElementById('map').clientWidth, document.getElementById('map').clientHeight]"
    )
    overlaps = [
        (a[0], b[0])
        for i, a in enumerate(boxes)
        for b in boxes[i + 1 :]
        if a[1] < b[3] and b[1] < a[3] and a[2] < b[4] and b[2] < a[4]
    ]
    assert not overlaps, f"nodes drawn over each other: {overlaps[:5]}"
    outside = [b[0] for b in boxes if b[1] < -1 or b[2] < -1 or b[3] > width + 1 or b[4] > height + 1]
    assert not outside, f"nodes outside the fitted view: {outside[:5]}"
