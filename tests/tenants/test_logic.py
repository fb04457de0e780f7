from __future__ import annotations

import json
import stat
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from tenants import logic
from tenants.models import ApiKey, IngestKey, Membership, Tenant

pytestmark = pytest.mark.django_db


def all_db_text() -> str:
    """Every value of every tenants table, to prove secrets are not stored."""
    chunks: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def test_create_tenant_validates_and_refuses_duplicates():
    created = logic.create_tenant("acme", "Acme Inc.")
    assert Tenant.objects.get(pk=created.tenant_id).display_name == "Acme Inc."
    with pytest.raises(logic.TenantExists, match="tenant acme already exists"):
        logic.create_tenant("acme")
    with pytest.raises(logic.InvalidTenantName, match="lowercase letters"):
        logic.create_tenant("Not A Slug")


def test_keys_have_the_documented_format_and_are_hashed_at_rest():
    tenant = logic.create_tenant("acme")
    ingest = logic.issue_ingest_key(tenant.tenant_id, "collector")
    api = logic.issue_api_key("acme", "grafana", ("read", "write"))

    assert ingest.raw.startswith("olly_ing_")
    assert len(ingest.raw) == 9 + 43
    assert api.raw.startswith("olly_api_")
    assert len(api.raw) == 9 + 43
    assert ingest.prefix == ingest.raw[:17]
    assert api.prefix == api.raw[:17]
    assert IngestKey.objects.get(pk=ingest.key_id).key_hash == logic.hash_key(ingest.raw)
    assert ApiKey.objects.get(pk=api.key_id).scopes == ["read", "write"]

    dump = all_db_text()
    assert ingest.raw not in dump
    assert api.raw not in dump
    assert logic.hash_key(api.raw) in dump


def test_unknown_scope_is_refused():
    logic.create_tenant("acme")
    with pytest.raises(logic.InvalidScopes, match="unknown scope delete"):
        logic.issue_api_key("acme", "x", ("read", "delete"))
    with pytest.raises(logic.UnknownTenant, match="no tenant named 'nope'"):
        logic.issue_ingest_key("nope")


def test_load_ingest_keys_skips_revoked_keys_and_inactive_tenants():
    a = logic.create_tenant("a")
    b = logic.create_tenant("b")
    key_a = logic.issue_ingest_key("a")
    key_a2 = logic.issue_ingest_key("a")
    key_b = logic.issue_ingest_key("b")
    logic.revoke_key(key_a2.prefix)
    logic.update_tenant("b", is_active=False)

    keys = logic.load_ingest_keys()
    assert keys == {logic.hash_key(key_a.raw): logic.IngestPrincipal(a.tenant_id, "a", key_a.key_id)}
    assert logic.hash_key(key_b.raw) not in keys
    assert b.tenant_id not in {p.tenant_id for p in keys.values()}


def test_revoke_by_prefix_id_and_full_key_and_clear_errors():
    logic.create_tenant("acme")
    ingest = logic.issue_ingest_key("acme")
    api = logic.issue_api_key("acme")
    api2 = logic.issue_api_key("acme")

    revoked = logic.revoke_key(ingest.prefix + "…")
    assert (revoked.kind, revoked.key_id, revoked.tenant_name) == ("ingest", ingest.key_id, "acme")
    assert logic.revoke_key(f"api:{api.key_id}").key_id == api.key_id
    assert logic.revoke_key(api2.raw).key_id == api2.key_id

    with pytest.raises(logic.KeyAlreadyRevoked, match="already revoked on"):
        logic.revoke_key(api.prefix)
    with pytest.raises(logic.UnknownKey, match="no api key starts with olly_api_zzzz"):
        logic.revoke_key("olly_api_zzzz")
    with pytest.raises(logic.UnknownKey, match="neither a key prefix"):
        logic.revoke_key("banana")


def test_revoke_by_bare_id_that_names_both_kinds_is_ambiguous():
    logic.create_tenant("acme")
    ingest = logic.issue_ingest_key("acme")
    api = logic.issue_api_key("acme")
    while ingest.key_id != api.key_id:  # the id sequences depend on what ran before in this database
        if ingest.key_id < api.key_id:
            ingest = logic.issue_ingest_key("acme")
        else:
            api = logic.issue_api_key("acme")
    n = api.key_id
    with pytest.raises(logic.AmbiguousKey, match=f"use ingest:{n}, api:{n} or the prefix"):
        logic.revoke_key(str(n))


def test_check_api_key_reasons():
    logic.create_tenant("acme")
    api = logic.issue_api_key("acme", scopes=("read",))
    ingest = logic.issue_ingest_key("acme")

    principal = logic.check_api_key(api.raw)
    assert principal.tenant_name == "acme"
    assert principal.scopes == ("read",)
    assert principal.allows("read")
    assert not principal.allows("write")
    assert logic.authenticate_api_key(api.raw) == principal

    with pytest.raises(
        logic.KeyRejected, match=r"this is an ingest key; the API needs an API key \(olly_api_…\)"
    ):
        logic.check_api_key(ingest.raw)
    with pytest.raises(logic.KeyRejected, match=r"^API key not recognised$"):
        logic.check_api_key("olly_api_" + "x" * 43)
    assert logic.authenticate_api_key("olly_api_nope") is None

    logic.revoke_key(api.prefix)
    with pytest.raises(logic.KeyRejected, match=rf"API key {api.prefix}… was revoked on \d{{4}}-"):
        logic.check_api_key(api.raw)


def test_expired_api_key_is_refused():
    logic.create_tenant("acme")
    api = logic.issue_api_key("acme", expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(logic.KeyRejected, match=rf"API key {api.prefix}… expired on"):
        logic.check_api_key(api.raw)
    fresh = logic.issue_api_key("acme", expires_at=timezone.now() + timedelta(days=1))
    assert logic.check_api_key(fresh.raw).key_id == fresh.key_id


def test_last_used_at_is_written_at_most_once_a_minute(django_assert_num_queries):
    logic.create_tenant("acme")
    api = logic.issue_api_key("acme")
    with django_assert_num_queries(2):  # lookup + first touch
        logic.check_api_key(api.raw)
    first = ApiKey.objects.get(pk=api.key_id).last_used_at
    assert first is not None
    with django_assert_num_queries(1):  # lookup only
        logic.check_api_key(api.raw)
    assert ApiKey.objects.get(pk=api.key_id).last_used_at == first

    ApiKey.objects.filter(pk=api.key_id).update(last_used_at=first - timedelta(minutes=2))
    logic.check_api_key(api.raw)
    touched = ApiKey.objects.get(pk=api.key_id).last_used_at
    assert touched is not None
    assert touched > first - timedelta(minutes=2)


def test_disabled_tenant_cannot_use_its_api_key():
    logic.create_tenant("acme")
    api = logic.issue_api_key("acme")
    logic.update_tenant("acme", is_active=False)
    with pytest.raises(logic.KeyRejected, match="tenant acme is disabled"):
        logic.check_api_key(api.raw)


def test_list_tenants_counts_active_keys_and_members():
    logic.create_tenant("b")
    logic.create_tenant("a")
    logic.issue_ingest_key("a")
    logic.revoke_key(logic.issue_api_key("a").prefix)
    logic.issue_api_key("a")
    user = get_user_model().objects.create_user("u")
    logic.set_membership("a", user, "viewer")
    infos = logic.list_tenants()
    assert [t.name for t in infos] == ["a", "b"]
    assert (infos[0].active_ingest_keys, infos[0].active_api_keys, infos[0].members) == (1, 1, 1)


def test_tenant_for_user():
    user = get_user_model().objects.create_user("u")
    with pytest.raises(logic.TenantAccessDenied, match="belongs to no tenant"):
        logic.tenant_for_user(user)
    a = logic.create_tenant("a")
    logic.set_membership("a", user, "viewer")
    assert logic.tenant_for_user(user) == logic.TenantRef(a.tenant_id, "a")
    logic.create_tenant("b")
    logic.set_membership("b", user, "editor")
    assert Membership.objects.get(user=user, tenant__name="b").role == "editor"
    with pytest.raises(logic.TenantAmbiguous, match=r"several tenants \(a, b\); add \?tenant=<name>"):
        logic.tenant_for_user(user)
    assert logic.tenant_for_user(user, "b").tenant_name == "b"
    logic.create_tenant("c")
    with pytest.raises(logic.TenantAccessDenied, match="not a member"):
        logic.tenant_for_user(user, "c")


def test_ensure_default_tenant_creates_once(tmp_path):
    first = logic.ensure_default_tenant(tmp_path)
    assert first.created
    creds = first.credentials
    assert set(creds) == {"tenant", "tenant_id", "admin_username", "admin_password", "ingest_key", "api_key"}
    path = tmp_path / "bootstrap.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == creds

    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser
    assert admin.check_password(creds["admin_password"])
    assert Membership.objects.get(user=admin, tenant__name="default").role == "owner"
    assert logic.check_api_key(creds["api_key"]).tenant_id == creds["tenant_id"]
    assert logic.hash_key(creds["ingest_key"]) in logic.load_ingest_keys()
    assert creds["admin_password"] not in all_db_text()

    counts = (Tenant.objects.count(), IngestKey.objects.count(), ApiKey.objects.count())
    second = logic.ensure_default_tenant(tmp_path)
    assert not second.created
    assert second.credentials == creds
    assert (Tenant.objects.count(), IngestKey.objects.count(), ApiKey.objects.count()) == counts
    assert get_user_model().objects.count() == 1


def test_ensure_default_tenant_without_file_does_not_duplicate(tmp_path):
    logic.ensure_default_tenant(tmp_path)
    (tmp_path / "bootstrap.json").unlink()
    again = logic.ensure_default_tenant(tmp_path)
    assert not again.created
    assert again.credentials == {}
    assert Tenant.objects.filter(name="default").count() == 1
