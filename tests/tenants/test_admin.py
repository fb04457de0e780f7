from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client

from ingest import quotas
from ingest.quotas import LocalQuotaStore, RedisQuotaStore
from tenants import logic
from tenants.models import ApiKey, IngestKey, Membership, Tenant
from tests.ingest.conftest import closed_port
from tests.tenants.conftest import use_quota

pytestmark = pytest.mark.django_db
MODELS = ["tenant", "membership", "ingestkey", "apikey"]
# What the tenant form submits when the quota and sampling fields are left as they are.
DEFAULT_POLICY_FORM = {
    "rate_limit_records_per_second": "",
    "rate_limit_burst": "",
    "daily_records_cap": "",
    "daily_bytes_cap": "",
    "trace_sample_rate": "1.0",
    "trace_slow_threshold_ms": "1000",
    "retention_days_traces": "30",
    "retention_days_logs": "30",
    "retention_days_metrics": "90",
}


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
        "/admin/tenants/tenant/add/",
        {"name": "new-co", "display_name": "New Co", "is_active": "on", **DEFAULT_POLICY_FORM},
    )
    assert response.status_code == 302
    tenant = Tenant.objects.get(name="new-co")
    assert tenant.display_name == "New Co"
    assert tenant.is_active
    assert logic.tenant_policy("new-co")[1] == logic.TenantPolicy()

    user = get_user_model().objects.create_user("bob")
    response = admin_client_.post(
        "/admin/tenants/membership/add/", {"tenant": tenant.pk, "user": user.pk, "role": "editor"}
    )
    assert response.status_code == 302
    assert Membership.objects.get(user=user).role == "editor"

    invalid = admin_client_.post("/admin/tenants/tenant/add/", {"name": "Bad Name"})
    assert invalid.status_code == 200
    assert "lowercase letters" in invalid.content.decode()


def test_tenant_page_shows_quotas_and_todays_usage(admin_client_: Client, quota_store: LocalQuotaStore):
    tenant = logic.create_tenant("acme")
    logic.set_tenant_policy("acme", logic.TenantPolicy(rate_limit_per_second=100, daily_records_cap=1000))
    use_quota(quota_store, "acme", 250, 4096)
    page = admin_client_.get(f"/admin/tenants/tenant/{tenant.tenant_id}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Quotas and sampling" in html
    assert "Sustained records per second" in html  # help texts
    assert "Spans at least this slow" in html
    assert "Usage today" in html
    assert "250 of 1,000 records (25.0 %)" in html
    assert "4,096 bytes (no cap)" in html
    assert "100 records/s, burst 200" in html
    assert "resets at" in html


def test_tenant_page_says_when_usage_cannot_be_read(admin_client_: Client, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(quotas, "_store", RedisQuotaStore(f"redis://127.0.0.1:{closed_port()}/0"))
    tenant = logic.create_tenant("acme")
    html = admin_client_.get(f"/admin/tenants/tenant/{tenant.tenant_id}/change/").content.decode()
    assert "Usage cannot be read right now: the quota store (Redis at redis://127.0.0.1:" in html


def test_quotas_and_sampling_are_edited_in_the_admin(admin_client_: Client, quota_store: LocalQuotaStore):
    tenant = logic.create_tenant("acme")
    url = f"/admin/tenants/tenant/{tenant.tenant_id}/change/"
    form = {"display_name": "Acme", "is_active": "on", **DEFAULT_POLICY_FORM}
    response = admin_client_.post(
        url,
        {
            **form,
            "rate_limit_records_per_second": "500",
            "daily_bytes_cap": "1000000",
            "trace_sample_rate": "0.1",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert logic.tenant_policy("acme")[1] == logic.TenantPolicy(
        rate_limit_per_second=500, daily_bytes_cap=1_000_000, trace_sample_rate=0.1
    )

    refused = admin_client_.post(url, {**form, "rate_limit_burst": "10", "trace_sample_rate": "0"})
    assert refused.status_code == 200
    html = refused.content.decode()
    assert "a burst needs a rate limit" in html
    assert "0.0 is not a sample rate" in html
    assert logic.tenant_policy("acme")[1].rate_limit_per_second == 500  # unchanged
