from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client

from tenants import logic
from tenants.models import ApiKey, IngestKey, Membership, Tenant

pytestmark = pytest.mark.django_db
MODELS = ["tenant", "membership", "ingestkey", "apikey"]


@pytest.fixture
def admin_client_(db: None) -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("model", MODELS)
def test_changelist_and_add_form_load(admin_client_: Client, model: str):
    logic.create_tenant("acme")
    logic.issue_ingest_key("acme")
    logic.issue_api_key("acme")
    assert admin_client_.get(f"/admin/tenants/{model}/").status_code == 200
    assert admin_client_.get(f"/admin/tenants/{model}/add/").status_code == 200


def test_change_pages_load_and_keys_are_read_only(admin_client_: Client):
    tenant = logic.create_tenant("acme")
    ingest = logic.issue_ingest_key("acme")
    api = logic.issue_api_key("acme")
    assert admin_client_.get(f"/admin/tenants/tenant/{tenant.tenant_id}/change/").status_code == 200
    for model, key in (("ingestkey", ingest), ("apikey", api)):
        page = admin_client_.get(f"/admin/tenants/{model}/{key.key_id}/change/")
        assert page.status_code == 200
        html = page.content.decode()
        assert key.prefix in html
        assert key.raw not in html
        assert 'name="name"' not in html  # no editable inputs


def test_adding_an_api_key_shows_it_once_and_stores_the_hash(admin_client_: Client):
    tenant = logic.create_tenant("acme")
    response = admin_client_.post(
        "/admin/tenants/apikey/add/",
        {"tenant": tenant.tenant_id, "name": "grafana", "scopes": ["read", "write"], "expires_at": ""},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    raw = next(m for m in texts if "will not be shown again" in m).split(": ")[-1]
    assert re.fullmatch(r"olly_api_[A-Za-z0-9_-]{43}", raw)
    key = ApiKey.objects.get(name="grafana")
    assert key.key_hash == logic.hash_key(raw)
    assert key.scopes == ["read", "write"]
    assert key.created_by is not None
    assert key.created_by.username == "root"
    assert logic.check_api_key(raw).allows("write")

    shown = admin_client_.get("/admin/tenants/apikey/").content.decode()
    assert raw in shown  # the message, displayed once
    listing = admin_client_.get("/admin/tenants/apikey/").content.decode()
    assert raw not in listing
    assert key.prefix in listing


def test_adding_an_ingest_key_and_revoking_it(admin_client_: Client):
    tenant = logic.create_tenant("acme")
    response = admin_client_.post(
        "/admin/tenants/ingestkey/add/", {"tenant": tenant.tenant_id, "name": "edge"}
    )
    assert response.status_code == 302
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    raw = next(m for m in texts if "will not be shown again" in m).split(": ")[-1]
    key = IngestKey.objects.get(name="edge")
    assert logic.hash_key(raw) in logic.load_ingest_keys()

    response = admin_client_.post(
        "/admin/tenants/ingestkey/", {"action": "revoke", "_selected_action": [key.pk]}, follow=True
    )
    assert response.status_code == 200
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert logic.hash_key(raw) not in logic.load_ingest_keys()


def test_adding_a_tenant_and_a_membership(admin_client_: Client):
    response = admin_client_.post(
        "/admin/tenants/tenant/add/", {"name": "new-co", "display_name": "New Co", "is_active": "on"}
    )
    assert response.status_code == 302
    tenant = Tenant.objects.get(name="new-co")
    assert tenant.display_name == "New Co"
    assert tenant.is_active

    user = get_user_model().objects.create_user("bob")
    response = admin_client_.post(
        "/admin/tenants/membership/add/", {"tenant": tenant.pk, "user": user.pk, "role": "editor"}
    )
    assert response.status_code == 302
    assert Membership.objects.get(user=user).role == "editor"

    invalid = admin_client_.post("/admin/tenants/tenant/add/", {"name": "Bad Name"})
    assert invalid.status_code == 200
    assert "lowercase letters" in invalid.content.decode()
