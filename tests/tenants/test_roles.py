"""The role table and what it lets each kind of caller do, without HTTP."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from tenants import logic
from tenants.logic import Permission as P

pytestmark = pytest.mark.django_db


def test_role_table() -> None:
    roles, scopes = logic.ROLE_PERMISSIONS, logic.SCOPE_PERMISSIONS
    assert roles == {
        "viewer": {P.READ},
        "editor": {P.READ, P.WRITE},
        "admin": {P.READ, P.WRITE, P.MANAGE_KEYS, P.MANAGE_MEMBERS},
        "owner": {P.READ, P.WRITE, P.MANAGE_KEYS, P.MANAGE_MEMBERS, P.MANAGE_OWNERS},
    }
    assert scopes == {
        "read": {P.READ},
        "write": {P.WRITE},
        "admin": logic.ROLE_PERMISSIONS["admin"],
    }
    assert logic.roles_with(P.MANAGE_KEYS) == ("admin", "owner")
    assert logic.scopes_with(P.READ) == ("read", "admin")
    assert logic.scopes_with(P.MANAGE_OWNERS) == ()


def test_keys_act_with_their_scopes() -> None:
    logic.create_tenant("acme")
    key = logic.issue_api_key("acme", "ci", ("read", "write"))
    access = logic.access_for_key(logic.check_api_key(key.raw))
    assert access.permissions == {P.READ, P.WRITE}
    assert access.key_prefix == key.prefix
    with pytest.raises(logic.PermissionRefused, match=r"lacks the 'admin' scope \(it has read, write\)"):
        access.require(P.MANAGE_KEYS)
    admin = logic.access_for_key(logic.check_api_key(logic.issue_api_key("acme", "a", ("admin",)).raw))
    with pytest.raises(logic.PermissionRefused, match="needs a signed-in owner; no key scope allows it"):
        admin.require(P.MANAGE_OWNERS)


def test_users_act_with_their_role() -> None:
    logic.create_tenant("acme")
    user = get_user_model().objects.create_user("ed")
    logic.set_membership("acme", user, "editor")
    access = logic.access_for_user(user)
    assert (access.tenant_name, access.role, access.user_id) == ("acme", "editor", user.pk)
    access.require(P.WRITE)
    with pytest.raises(logic.PermissionRefused, match="your role in tenant acme is editor; managing members"):
        access.require(P.MANAGE_MEMBERS)
    assert logic.access_for_user(user, str(access.tenant_id)).tenant_name == "acme"  # the id works too


def test_a_key_cannot_create_a_wider_key() -> None:
    logic.create_tenant("acme")
    user = get_user_model().objects.create_user("ed")
    logic.set_membership("acme", user, "admin")
    admin = logic.access_for_user(user)
    assert logic.create_key(admin, "api", "x", ("admin",)).scopes == ("admin",)
    narrow = logic.TenantAccess(admin.tenant_id, "acme", frozenset({P.READ, P.MANAGE_KEYS}), key_prefix="k")
    with pytest.raises(logic.PermissionRefused, match="could do more than you may"):
        logic.create_key(narrow, "api", "x", ("write",))


def test_bound_tenant_for_a_superuser_and_for_a_removed_member() -> None:
    created = logic.create_tenant("acme")
    root = get_user_model().objects.create_superuser("root", "r@example.com", "pw")
    assert logic.access_for_user(root, bound_tenant_id=created.tenant_id).role == "owner"
    user = get_user_model().objects.create_user("gone")
    with pytest.raises(logic.TenantAccessDenied, match="no longer a member of an active tenant named 'acme'"):
        logic.access_for_user(user, bound_tenant_id=created.tenant_id)
