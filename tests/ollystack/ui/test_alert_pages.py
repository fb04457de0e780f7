"""The alert pages' shells: the editor offers exactly the choices the rule API accepts, names the rule it
edits, answers 404 for a rule outside the tenant, and is read-only for viewers."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from alerts import logic as alert_logic
from alerts.api.serializers import RuleSerializer
from ollystack.ui.alerts import choices
from tenants import logic


def member(tenant_id: str, username: str, role: str) -> Client:
    user = get_user_model().objects.create_user(username, password="pw-12345678")
    logic.set_membership(tenant_id, user, role)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def tenant_id(db: None) -> str:
    return logic.create_tenant("alert-pages").tenant_id


def page_config(html: str) -> dict[str, object]:
    found = re.search(r'<script id="olly-config" type="application/json">(.*?)</script>', html, re.S)
    assert found, "the page carries its config"
    return dict(json.loads(found.group(1)))


def test_the_editor_offers_what_the_rule_api_accepts() -> None:
    fields = RuleSerializer().fields
    for name, offered in choices().items():
        accepted = set(fields[name].choices)  # type: ignore[attr-defined]
        assert {value for value, _ in offered} == accepted - {""}, name


def test_an_editor_edits_a_rule_of_the_tenant(tenant_id: str) -> None:
    rule = alert_logic.create_rule(
        tenant_id, alert_logic.RuleSpec(name="checkout errors", service="checkout", red_figure="error_rate")
    )
    editor = member(tenant_id, "alert-editor", "editor")
    response = editor.get(f"/alerts/rules/{rule.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>Alert rule: checkout errors · OllyStack</title>" in html
    assert page_config(html)["ruleId"] == rule.pk
    assert 'id="save"' in html
    assert 'id="confirm-delete"' in html
    assert '<option value="anomaly">Anomaly (z-score)</option>' in html
    assert "ui/js/pages/alert-rule.js" in html


def test_a_viewer_gets_the_editor_read_only(tenant_id: str) -> None:
    rule = alert_logic.create_rule(
        tenant_id, alert_logic.RuleSpec(name="quiet", service="checkout", kind="absence")
    )
    viewer = member(tenant_id, "alert-viewer", "viewer")
    html = viewer.get(f"/alerts/rules/{rule.pk}/").content.decode()
    assert 'id="readonly"' in html
    assert 'id="save"' not in html
    assert 'id="delete"' not in html
    index = viewer.get("/alerts/").content.decode()
    assert "New rule" not in index
    assert page_config(index)["canWrite"] is False


def test_a_rule_of_another_tenant_is_not_found(tenant_id: str) -> None:
    other = logic.create_tenant("alert-pages-other").tenant_id
    rule = alert_logic.create_rule(
        other, alert_logic.RuleSpec(name="theirs", service="checkout", kind="absence")
    )
    editor = member(tenant_id, "alert-editor", "editor")
    assert editor.get(f"/alerts/rules/{rule.pk}/").status_code == 404
    assert editor.get("/alerts/rules/new/").status_code == 200


def test_the_pages_need_a_session(db: None) -> None:
    for path in ("/alerts/", "/alerts/rules/new/", "/service-map/"):
        response = Client().get(path)
        assert response.status_code == 302, path
        assert "/accounts/login/" in response["Location"]
