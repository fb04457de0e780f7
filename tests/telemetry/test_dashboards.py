"""Dashboards' logic: validation that names the panel and field, saves refused when based on an old version,
open pages told only after a save commits, and panel data from the same queries the read API runs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from ollystack.clickhouse import Signal
from ollystack.telemetry import dashboards as logic
from ollystack.telemetry.dashboards import DashboardSpec, PanelRange, PanelSpec
from tenants import logic as tenants
from tests.api.conftest import metric_request, trace_request

pytestmark = pytest.mark.django_db

NS = 1_000_000_000
SQL = PanelSpec(
    title="Spans", type="table", language="sql", query="SELECT service_name, count() FROM spans GROUP BY 1"
)
PROMQL = PanelSpec(title="Queue", type="timeseries", language="promql", query="checkout_queue_depth_ratio")


@pytest.fixture
def acme() -> str:
    return tenants.create_tenant(f"acme-{uuid.uuid4().hex[:6]}").tenant_id


def invalid(spec: DashboardSpec) -> str:
    with pytest.raises(logic.InvalidDashboard) as caught:
        logic.check_dashboard(spec)
    return str(caught.value)


def test_a_dashboard_is_stored_trimmed_with_panel_ids(acme: str) -> None:
    created = logic.create_dashboard(
        acme, DashboardSpec(name="  Checkout ", panels=(SQL, PanelSpec("  Rate ", "stat", "promql", " up ")))
    )
    assert created.name == "Checkout"
    assert created.version == 1
    assert [p.title for p in created.panels] == ["Spans", "Rate"]
    assert created.panels[1].query == "up"
    assert all(p.id.startswith("p") for p in created.panels)
    assert len({p.id for p in created.panels}) == 2
    assert logic.get_dashboard(acme, created.id) == created
    assert [d.id for d in logic.list_dashboards(acme)] == [created.id]


@pytest.mark.parametrize(
    ("panel", "message"),
    [
        (
            PanelSpec("Pie", "pie", "sql", "SELECT 1"),
            "panel 1 (Pie): type 'pie' is not one of timeseries, stat",
        ),
        (PanelSpec("", "stat", "lua", "x"), "panel 1: language 'lua' is not one of promql, sql"),
        (PanelSpec("Empty", "stat", "sql", "   "), "panel 1 (Empty): the query is empty"),
        (PanelSpec("Bad", "stat", "promql", "sum(rate(x[5m])"), "panel 1 (Bad): PromQL: parse error"),
        (PanelSpec("Range", "timeseries", "promql", "x[5m]"), "a range vector; a panel needs an instant"),
        (PanelSpec("Wide", "stat", "sql", "SELECT 1", width=13), "width 13 is out of range; use 3 to 12"),
        (PanelSpec("Id", "stat", "sql", "SELECT 1", id="a b"), "id: letters, digits"),
    ],
)
def test_invalid_panels_are_named(panel: PanelSpec, message: str) -> None:
    assert message in invalid(DashboardSpec(name="d", panels=(panel,)))


def test_dashboard_level_checks() -> None:
    assert invalid(DashboardSpec(name="  ")) == "name: is required"
    too_many = tuple(SQL for _ in range(logic.MAX_PANELS + 1))
    assert f"at most {logic.MAX_PANELS}" in invalid(DashboardSpec(name="d", panels=too_many))
    twice = (
        PanelSpec("a", "stat", "sql", "SELECT 1", id="x"),
        PanelSpec("b", "stat", "sql", "SELECT 2", id="x"),
    )
    assert "panel 2: id 'x' is used by another panel" in invalid(DashboardSpec(name="d", panels=twice))


def test_panels_from_json_refuse_unknown_fields_and_wrong_types() -> None:
    with pytest.raises(logic.InvalidDashboard, match="panel 1: unknown field 'colour'"):
        logic.panels_from_json([{"type": "stat", "colour": "red"}])
    with pytest.raises(logic.InvalidDashboard, match="panel 2: width must be a whole number"):
        logic.panels_from_json([SQL.as_json(), {**SQL.as_json(), "width": "wide"}])
    with pytest.raises(logic.InvalidDashboard, match="a list of panels"):
        logic.panels_from_json({"type": "stat"})
    assert logic.panels_from_json([SQL.as_json()]) == (SQL,)


def test_saves_based_on_an_old_version_are_refused(acme: str) -> None:
    created = logic.create_dashboard(acme, DashboardSpec(name="d", panels=(SQL,)))
    saved = logic.update_dashboard(
        acme, created.id, DashboardSpec(name="d2", panels=created.panels), version=1
    )
    assert (saved.name, saved.version) == ("d2", 2)
    assert saved.panels[0].id == created.panels[0].id
    with pytest.raises(logic.VersionConflict, match="version 2; your changes are based on version 1"):
        logic.update_dashboard(acme, created.id, DashboardSpec(name="d3"), version=1)
    assert logic.get_dashboard(acme, created.id).name == "d2"


def test_other_tenants_dashboards_are_not_found(acme: str) -> None:
    other = tenants.create_tenant(f"other-{uuid.uuid4().hex[:6]}").tenant_id
    created = logic.create_dashboard(other, DashboardSpec(name="theirs"))
    with pytest.raises(logic.NotFound):
        logic.get_dashboard(acme, created.id)
    with pytest.raises(logic.NotFound):
        logic.update_dashboard(acme, created.id, DashboardSpec(name="mine"), version=1)
    with pytest.raises(logic.NotFound):
        logic.delete_dashboard(acme, created.id)
    assert logic.list_dashboards(acme) == []
    assert logic.get_dashboard(other, created.id).name == "theirs"


def _listen(group: str) -> tuple[Any, str]:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    return layer, channel


def test_open_pages_are_told_after_the_save_commits(
    acme: str, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    created = logic.create_dashboard(acme, DashboardSpec(name="d", panels=(SQL,)))
    layer, channel = _listen(logic.group_name(acme, created.id))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        logic.update_dashboard(acme, created.id, DashboardSpec(name="d2"), version=1)
    assert len(callbacks) == 1  # nothing is sent before the commit
    callbacks[0]()
    assert async_to_sync(layer.receive)(channel) == {
        "type": "dashboard.changed",
        "dashboard": created.id,
        "version": 2,
    }
    with django_capture_on_commit_callbacks(execute=True):
        logic.delete_dashboard(acme, created.id)
    assert async_to_sync(layer.receive)(channel) == {"type": "dashboard.deleted", "dashboard": created.id}


def test_a_refused_save_tells_nobody(
    acme: str, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    created = logic.create_dashboard(acme, DashboardSpec(name="d"))
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(logic.VersionConflict):
        logic.update_dashboard(acme, created.id, DashboardSpec(name="d2"), version=7)
    assert callbacks == []


def test_step_keeps_a_range_under_the_point_limit() -> None:
    assert logic.step_seconds(0, 3600) == 15
    assert logic.step_seconds(0, 60) == 1
    window = PanelRange.last(3600, now=10_000)
    assert (window.start, window.end, window.step) == (6_400, 10_000, 15)


def test_panel_data_runs_the_read_apis_queries(acme: str, insert_requests: Callable[..., int]) -> None:
    now = time.time_ns()
    insert_requests(Signal.TRACES, (acme, trace_request("checkout", uuid.uuid4().bytes, now - 60 * NS)))
    insert_requests(
        Signal.METRICS,
        (
            acme,
            metric_request("checkout", "checkout.queue.depth", [(now - 120 * NS, 2.0), (now - 30 * NS, 3.0)]),
        ),
    )
    window = PanelRange.last(600)
    table = logic.panel_data(acme, PanelSpec(**{**SQL.as_json(), "id": "t"}), window)
    assert table["panel"] == "t"
    assert table["result"]["rows"] == [["checkout", 2]]
    assert [c["name"] for c in table["result"]["columns"]] == ["service_name", "count()"]

    series = logic.panel_data(acme, PanelSpec(**{**PROMQL.as_json(), "id": "s"}), window)
    assert series["result"]["resultType"] == "matrix"
    (line,) = series["result"]["result"]
    assert line["metric"]["job"] == "checkout"
    assert line["values"][-1][1] == "3"

    stat = logic.panel_data(
        acme, PanelSpec("n", "stat", "promql", "sum(checkout_queue_depth_ratio)", id="n"), window
    )
    assert stat["result"]["resultType"] == "vector"
    assert stat["result"]["result"][0]["value"][1] == "3"


def test_panel_data_errors_carry_the_engines_message(acme: str, clickhouse: Any) -> None:
    window = PanelRange.last(600)
    bad_sql = logic.panel_data(
        acme, PanelSpec("x", "table", "sql", "SELECT * FROM system.users", id="x"), window
    )
    assert set(bad_sql) == {"panel", "error"}
    assert "system.users" in bad_sql["error"]
    bad_promql = logic.panel_data(acme, PanelSpec("y", "stat", "promql", "rate(x)", id="y"), window)
    assert bad_promql["panel"] == "y"
    assert "range vector" in bad_promql["error"] or "expected" in bad_promql["error"]
