"""Members and keys over the API: what each change does, the owner rules, and browser sessions with CSRF."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from tenants import logic
from tenants.models import ApiKey, Membership

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme() -> dict[str, Any]:
    logic.create_tenant("acme")
    logic.create_tenant("beta")
    users = {}
    for role in ("owner", "admin", "editor", "viewer"):
        users[role] = get_user_model().objects.create_user(role, f"{role}@example.com", "pw")
        logic.set_membership("acme", users[role], role)
    return users


def as_user(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def as_key(tenant: str, *scopes: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {logic.issue_api_key(tenant, 'tests', scopes).raw}")
    return client


def test_members_list(acme: dict[str, Any]) -> None:
    body = as_user(acme["viewer"]).get("/api/v1/members").json()
    assert body["tenant"] == "acme"
    assert [(m["username"], m["role"]) for m in body["members"]] == [
        ("admin", "admin"),
        ("editor", "editor"),
        ("owner", "owner"),
        ("viewer", "viewer"),
    ]
    assert body["members"][0]["email"] == "admin@example.com"


def test_add_change_remove_a_member(acme: dict[str, Any]) -> None:
    get_user_model().objects.create_user("zoe")
    admin = as_user(acme["admin"])
    added = admin.post("/api/v1/members", {"username": "zoe", "role": "editor"}, format="json")
    assert added.status_code == 201, added.json()
    assert added.json()["role"] == "editor"
    again = admin.post("/api/v1/members", {"username": "zoe"}, format="json")
    assert again.status_code == 409
    assert again.json()["error"] == (
        "zoe is already a member of tenant acme (editor); change the role with PATCH /api/v1/members/zoe"
    )
    changed = admin.patch("/api/v1/members/zoe", {"role": "admin"}, format="json")
    assert changed.json()["role"] == "admin"
    assert admin.delete("/api/v1/members/zoe").status_code == 204
    assert not Membership.objects.filter(user__username="zoe").exists()
    missing = admin.delete("/api/v1/members/zoe")
    assert missing.status_code == 404
    assert missing.json()["error"].startswith("'zoe' is not a member of tenant acme")


def test_unknown_account_and_role(acme: dict[str, Any]) -> None:
    admin = as_user(acme["admin"])
    unknown = admin.post("/api/v1/members", {"username": "ghost"}, format="json")
    assert unknown.status_code == 400
    assert unknown.json()["error"].startswith("no account named 'ghost'")
    bad_role = admin.patch("/api/v1/members/viewer", {"role": "superuser"}, format="json")
    assert bad_role.status_code == 400
    assert bad_role.json()["error"] == 'role: "superuser" is not a valid choice.'


def test_only_owners_touch_owners(acme: dict[str, Any]) -> None:
    admin = as_user(acme["admin"])
    refused = admin.patch("/api/v1/members/viewer", {"role": "owner"}, format="json")
    assert refused.status_code == 403
    assert refused.json() == {
        "error": "only an owner of tenant acme may grant or take the owner role; ask one of its owners"
    }
    assert admin.delete("/api/v1/members/owner").status_code == 403
    assert (
        as_key("acme", "admin").patch("/api/v1/members/owner", {"role": "viewer"}, format="json").status_code
        == 403
    )

    owner = as_user(acme["owner"])
    assert owner.patch("/api/v1/members/admin", {"role": "owner"}, format="json").status_code == 200
    assert owner.patch("/api/v1/members/admin", {"role": "admin"}, format="json").status_code == 200


def test_the_last_owner_stays(acme: dict[str, Any]) -> None:
    owner = as_user(acme["owner"])
    last = owner.delete("/api/v1/members/owner")
    assert last.status_code == 409
    assert last.json()["error"] == "owner is the last owner of tenant acme; make another member owner first"
    assert owner.patch("/api/v1/members/owner", {"role": "admin"}, format="json").status_code == 409
    owner.patch("/api/v1/members/editor", {"role": "owner"}, format="json")
    assert owner.delete("/api/v1/members/owner").status_code == 204


def test_keys_create_list_revoke(acme: dict[str, Any]) -> None:
    admin = as_user(acme["admin"])
    expires = (timezone.now() + timedelta(days=30)).isoformat()
    created = admin.post(
        "/api/v1/keys", {"name": "grafana", "scopes": ["read"], "expires_at": expires}, format="json"
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["key"].startswith("olly_api_")
    assert body["id"] == body["key"][:17]
    assert (body["kind"], body["scopes"], body["status"], body["created_by"]) == (
        "api",
        ["read"],
        "active",
        "admin",
    )

    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Bearer {body['key']}")
    assert reader.get("/api/v1/members").status_code == 200

    ingest = admin.post("/api/v1/keys", {"kind": "ingest", "name": "collector"}, format="json").json()
    assert ingest["key"].startswith("olly_ing_")

    listed = admin.get("/api/v1/keys").json()
    assert {k["id"] for k in listed["keys"]} == {body["id"], ingest["id"]}
    assert all("key" not in k for k in listed["keys"])  # secrets are shown once
    listed_api = admin.get("/api/v1/keys", {"kind": "api"}).json()["keys"]
    assert [k["name"] for k in listed_api] == ["grafana"]
    assert listed_api[0]["last_used_at"] is not None

    revoked = admin.post(f"/api/v1/keys/{body['id']}/revoke")
    assert revoked.status_code == 200
    assert revoked.json()["status"] == "revoked"
    assert reader.get("/api/v1/members").status_code == 401
    again = admin.post(f"/api/v1/keys/{body['id']}/revoke")
    assert again.status_code == 409
    assert admin.get("/api/v1/keys", {"kind": "api"}).json()["keys"] == []
    assert len(admin.get("/api/v1/keys", {"include_revoked": "true"}).json()["keys"]) == 2


def test_keys_of_another_tenant_are_unknown(acme: dict[str, Any]) -> None:
    foreign = logic.issue_api_key("beta", "theirs")
    response = as_user(acme["owner"]).post(f"/api/v1/keys/{foreign.prefix}/revoke")
    assert response.status_code == 404
    assert response.json()["error"] == (
        f"tenant acme has no key {foreign.prefix}; GET /api/v1/keys lists its keys"
    )
    assert ApiKey.objects.get(pk=foreign.key_id).revoked_at is None


def test_key_input_errors(acme: dict[str, Any]) -> None:
    admin = as_user(acme["admin"])
    past = admin.post("/api/v1/keys", {"expires_at": "2001-01-01T00:00:00Z"}, format="json")
    assert past.status_code == 400
    assert "is in the past" in past.json()["error"]
    scope = admin.post("/api/v1/keys", {"scopes": ["root"]}, format="json")
    assert scope.status_code == 400
    assert scope.json()["error"] == 'scopes: 0: "root" is not a valid choice.'
    ingest = admin.post(
        "/api/v1/keys", {"kind": "ingest", "expires_at": "2099-01-01T00:00:00Z"}, format="json"
    )
    assert ingest.status_code == 400
    assert ingest.json()["error"].startswith("ingest keys do not expire")


def test_write_scope_alone_cannot_read(acme: dict[str, Any]) -> None:
    response = as_key("acme", "write").get("/api/v1/members")
    assert response.status_code == 403
    assert response.json()["error"].startswith("API key lacks the 'read' scope (it has write)")
    owner_action = as_key("acme", "admin").post("/api/v1/members", {"username": "viewer", "role": "owner"})
    assert owner_action.status_code == 403
    assert owner_action.json()["error"] == (
        "only an owner of tenant acme may grant the owner role; ask one of its owners"
    )


def test_browser_sessions_need_the_csrf_token(acme: dict[str, Any]) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(acme["admin"])
    assert client.get("/api/v1/members").status_code == 200  # reads need no token
    refused = client.post("/api/v1/keys", {"name": "x"}, format="json")
    assert refused.status_code == 403
    assert refused.json()["error"].startswith("CSRF Failed")
    client.get("/admin/login/")  # any page that renders a form sets the cookie
    token = client.cookies["csrftoken"].value
    allowed = client.post("/api/v1/keys", {"name": "x"}, format="json", HTTP_X_CSRFTOKEN=token)
    assert allowed.status_code == 201, allowed.json()


def test_superusers_act_as_owner_of_a_named_tenant(acme: dict[str, Any]) -> None:
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = as_user(root)
    assert client.get("/api/v1/members").status_code == 403  # no membership: must name the tenant
    assert client.get("/api/v1/keys", {"tenant": "beta"}).status_code == 200
