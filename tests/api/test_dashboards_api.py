"""The dashboards REST API: lifecycle, version conflicts as 409, refusals that name the panel, viewers
refused changes, other tenants' dashboards invisible, and the OpenAPI description."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tenants import logic as tenants
from tenants.models import Role

pytestmark = pytest.mark.django_db

PANELS: list[dict[str, Any]] = [
    {
        "title": "Requests",
        "type": "timeseries",
        "language": "promql",
        "query": "sum(rate(http_requests_total[5m]))",
    },
    {
        "title": "Spans",
        "type": "table",
        "language": "sql",
        "query": "SELECT service_name, count() FROM spans GROUP BY 1",
    },
]


def key_client(tenant: str, *scopes: str) -> APIClient:
    client = APIClient()
    client.default_format = "json"
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tenants.issue_api_key(tenant, 'tests', scopes).raw}")
    return client


def user_client(tenant: str, role: str) -> APIClient:
    user = get_user_model().objects.create_user(f"{role}-user", password="pw-12345678")
    tenants.set_membership(tenant, user, role)
    client = APIClient()
    client.default_format = "json"
    client.force_login(user)
    return client


@pytest.fixture
def acme() -> str:
    return tenants.create_tenant("acme").tenant_id


@pytest.fixture
def api(acme: str) -> APIClient:
    return key_client("acme", "read", "write")


def error(response: Any) -> str:
    return str(response.json()["error"])


def test_dashboard_lifecycle(api: APIClient) -> None:
    created = api.post("/api/v1/dashboards?tenant=acme", {"name": "Checkout", "panels": PANELS})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["version"] == 1
    assert [p["title"] for p in body["panels"]] == ["Requests", "Spans"]
    assert all(p["id"] and p["width"] == 6 and p["unit"] == "" for p in body["panels"])
    url = f"/api/v1/dashboards/{body['id']}"

    listed = api.get("/api/v1/dashboards").json()["dashboards"]
    assert [(d["id"], d["name"], d["panel_count"], d["version"]) for d in listed] == [
        (body["id"], "Checkout", 2, 1)
    ]

    # what GET returns can be sent back as it is, with the changes
    got = api.get(url).json()
    got["panels"] = list(reversed(got["panels"]))
    got["panels"][0]["width"] = 12
    saved = api.put(url, got)
    assert saved.status_code == 200, saved.content
    assert saved.json()["version"] == 2
    assert [(p["title"], p["width"]) for p in saved.json()["panels"]] == [("Spans", 12), ("Requests", 6)]
    assert [p["id"] for p in saved.json()["panels"]] == [p["id"] for p in reversed(body["panels"])]

    stale = api.put(url, {**got, "name": "Old copy"})  # still version 1
    assert stale.status_code == 409
    assert "saved by someone else in the meantime (version 2" in error(stale)
    assert api.get(url).json()["name"] == "Checkout"

    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404
    assert api.delete(url).status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"panels": []}, "name: a name (text) is required"),
        ({"name": "x", "colour": "red"}, "colour: unknown field; send name, description, panels, version"),
        (
            {"name": "x", "panels": [{**PANELS[0], "type": "pie"}]},
            "panels: panel 1 (Requests): type 'pie' is not",
        ),
        (
            {"name": "x", "panels": [{**PANELS[0], "query": "sum(rate("}]},
            "panels: panel 1 (Requests): PromQL:",
        ),
        (
            {"name": "x", "panels": [PANELS[1], {**PANELS[1], "query": ""}]},
            "panel 2 (Spans): the query is empty",
        ),
        ({"name": "x", "panels": [{**PANELS[0], "size": 3}]}, "panel 1: unknown field 'size'"),
        ({"name": "x", "panels": "all"}, "panels: a list of panels"),
    ],
)
def test_refusals_name_what_to_fix(api: APIClient, body: dict[str, Any], message: str) -> None:
    response = api.post("/api/v1/dashboards", body)
    assert response.status_code == 400
    assert message in error(response)


def test_a_replace_needs_the_version(api: APIClient) -> None:
    created = api.post("/api/v1/dashboards", {"name": "d"}).json()
    response = api.put(f"/api/v1/dashboards/{created['id']}", {"name": "d2"})
    assert response.status_code == 400
    assert "version: the version your changes are based on" in error(response)


def test_viewers_read_editors_write(acme: str) -> None:
    editor = user_client("acme", Role.EDITOR)
    viewer = user_client("acme", Role.VIEWER)
    created = editor.post("/api/v1/dashboards?tenant=acme", {"name": "d", "panels": PANELS})
    assert created.status_code == 201, created.content
    assert created.json()["created_by"] == "editor-user"
    url = f"/api/v1/dashboards/{created.json()['id']}?tenant=acme"
    assert viewer.get(url).status_code == 200
    assert viewer.get("/api/v1/dashboards?tenant=acme").status_code == 200
    refused = viewer.put(url, {"name": "mine", "version": 1})
    assert refused.status_code == 403
    assert viewer.post("/api/v1/dashboards?tenant=acme", {"name": "x"}).status_code == 403
    assert viewer.delete(url).status_code == 403
    assert key_client("acme", "read").post("/api/v1/dashboards", {"name": "x"}).status_code == 403


def test_other_tenants_dashboards_are_404(api: APIClient) -> None:
    tenants.create_tenant("beta")
    theirs = key_client("beta", "read", "write").post("/api/v1/dashboards", {"name": "theirs"}).json()
    url = f"/api/v1/dashboards/{theirs['id']}"
    assert api.get(url).status_code == 404
    assert api.put(url, {"name": "mine", "version": 1}).status_code == 404
    assert api.delete(url).status_code == 404
    assert api.get("/api/v1/dashboards").json() == {"dashboards": []}


def test_the_schema_describes_the_endpoints(api: APIClient) -> None:
    schema = APIClient().get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert set(paths["/api/v1/dashboards"]) >= {"get", "post"}
    assert set(paths["/api/v1/dashboards/{dashboard_id}"]) >= {"get", "put", "delete"}
    assert "409" in paths["/api/v1/dashboards/{dashboard_id}"]["put"]["responses"]
