"""The trace pages' shells: a signed-in member gets the page with the trace id for its script."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from tenants import logic


@pytest.fixture
def viewer(db: None) -> Client:
    tenant = logic.create_tenant("trace-pages")
    user = get_user_model().objects.create_user("trace-viewer", password="pw-12345678")
    logic.set_membership(tenant.tenant_id, user, "viewer")
    client = Client()
    client.force_login(user)
    return client


def page_config(html: str) -> dict[str, object]:
    found = re.search(r'<script id="olly-config" type="application/json">(.*?)</script>', html, re.S)
    assert found, "the page carries its config"
    return dict(json.loads(found.group(1)))


def test_the_trace_page_hands_the_lowercased_id_to_its_script(viewer: Client) -> None:
    response = viewer.get(f"/traces/{'AB' * 16}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert page_config(html)["traceId"] == "ab" * 16
    assert "ui/js/pages/trace.js" in html
    assert 'id="waterfall"' in html


def test_a_malformed_trace_id_is_answered_without_a_script(viewer: Client) -> None:
    response = viewer.get("/traces/not-a-trace/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "not a trace id: a trace id is 32 hexadecimal characters" in html
    assert page_config(html)["traceId"] is None
    assert "ui/js/pages/trace.js" not in html


def test_the_search_page_loads_its_script(viewer: Client) -> None:
    response = viewer.get("/traces/?service=payments")
    assert response.status_code == 200
    html = response.content.decode()
    assert "ui/js/pages/traces.js" in html
    assert 'id="trace-search"' in html
    assert page_config(html)["tenant"] == "trace-pages"


def test_the_pages_need_a_session(db: None) -> None:
    response = Client().get("/traces/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_page_reads_the_waterfall_and_span_endpoints(viewer: Client) -> None:
    html = viewer.get(f"/traces/{'cd' * 16}/").content.decode()
    config = page_config(html)
    assert config["waterfallUrl"] == f"/api/v1/traces/{'cd' * 16}/waterfall"
    assert config["spanUrlPrefix"] == f"/api/v1/traces/{'cd' * 16}/spans/"
