"""JWTs for accounts: sign-in, tenant binding, refresh with rotation, and every reason a token is refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from tenants import auth, logic

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def _fresh_rate_limit() -> None:
    cache.clear()  # sign-in attempts are counted per address in the default cache


@pytest.fixture
def ann() -> Any:
    logic.create_tenant("acme")
    logic.create_tenant("beta")
    user = get_user_model().objects.create_user("ann", password=PASSWORD)
    logic.set_membership("acme", user, "viewer")
    return user


def sign_in(**body: str) -> Any:
    return APIClient().post("/api/v1/auth/token", body, format="json")


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_sign_in_and_use_the_access_token(ann: Any) -> None:
    response = sign_in(username="ann", password=PASSWORD)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["tenant"] is None
    assert 290 <= body["expires_in"] <= 300  # five minutes by default
    usage = bearer(body["access"]).get("/api/v1/members")
    assert usage.status_code == 200, usage.json()
    assert usage.json()["tenant"] == "acme"
    assert [m["username"] for m in usage.json()["members"]] == ["ann"]


def test_wrong_password_and_disabled_account(ann: Any) -> None:
    wrong = sign_in(username="ann", password="nope")
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "username or password is wrong, or the account is disabled"}
    assert sign_in(username="nobody", password="x").json() == wrong.json()
    ann.is_active = False
    ann.save()
    assert sign_in(username="ann", password=PASSWORD).status_code == 401
    missing = sign_in(username="ann")
    assert missing.status_code == 400
    assert missing.json()["error"] == "password: This field is required."


def test_a_token_for_one_tenant(ann: Any) -> None:
    logic.set_membership("beta", ann, "editor")
    unbound = sign_in(username="ann", password=PASSWORD).json()
    ambiguous = bearer(unbound["access"]).get("/api/v1/members")
    assert ambiguous.status_code == 400
    assert ambiguous.json()["error"].startswith(
        "tenant: you belong to several tenants (acme, beta); add ?tenant="
    )
    assert "POST /api/v1/auth/token with" in ambiguous.json()["error"]
    assert bearer(unbound["access"]).get("/api/v1/members", {"tenant": "beta"}).json()["tenant"] == "beta"

    bound = sign_in(username="ann", password=PASSWORD, tenant="beta").json()
    assert bound["tenant"] == "beta"
    client = bearer(bound["access"])
    assert client.get("/api/v1/members").json()["tenant"] == "beta"
    other = client.get("/api/v1/members", {"tenant": "acme"})
    assert other.status_code == 403
    assert other.json()["error"] == (
        "this token was issued for tenant beta; it cannot act for tenant acme; get a token for acme from "
        "POST /api/v1/auth/token"
    )


def test_a_token_for_a_tenant_of_someone_else(ann: Any) -> None:
    response = sign_in(username="ann", password=PASSWORD, tenant="beta")
    assert response.status_code == 403
    assert response.json() == {
        "error": "you are not a member of an active tenant named 'beta'; your tenants: acme"
    }


def test_the_role_is_read_on_each_request(ann: Any) -> None:
    access = sign_in(username="ann", password=PASSWORD, tenant="acme").json()["access"]
    client = bearer(access)
    refused = client.get("/api/v1/keys")
    assert refused.status_code == 403
    assert refused.json()["error"] == (
        "your role in tenant acme is viewer; managing API and ingest keys needs admin or owner; ask an owner "
        "or admin of acme"
    )
    logic.set_membership("acme", ann, "admin")
    assert client.get("/api/v1/keys").status_code == 200
    logic.remove_member(logic.access_for_user(ann, "acme"), "ann")
    gone = client.get("/api/v1/members")
    assert gone.status_code == 403
    assert gone.json()["error"] == "you are no longer a member of an active tenant named 'acme'"


def test_expired_access_token_says_to_refresh(ann: Any) -> None:
    token = AccessToken.for_user(ann)
    token.set_exp(from_time=token.current_time - timedelta(minutes=10))
    response = bearer(str(token)).get("/api/v1/members")
    assert response.status_code == 401
    assert response.json() == {"error": "JWT expired; refresh it at /api/v1/auth/token/refresh"}
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_tampered_and_foreign_tokens(ann: Any) -> None:
    access = sign_in(username="ann", password=PASSWORD).json()["access"]
    header, payload, signature = access.split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"
    response = bearer(forged).get("/api/v1/members")
    assert response.status_code == 401
    assert response.json()["error"].startswith("JWT not valid (malformed, or not signed by this server)")


def test_refresh_token_is_not_an_access_token(ann: Any) -> None:
    pair = sign_in(username="ann", password=PASSWORD).json()
    response = bearer(pair["refresh"]).get("/api/v1/members")
    assert response.status_code == 401
    assert response.json()["error"].startswith(
        "this is a refresh token; exchange it at /api/v1/auth/token/refresh"
    )
    wrong = APIClient().post("/api/v1/auth/token/refresh", {"refresh": pair["access"]}, format="json")
    assert wrong.status_code == 401
    assert wrong.json()["error"].startswith("not a valid refresh token")


def test_refresh_rotates_and_keeps_the_tenant(ann: Any) -> None:
    pair = sign_in(username="ann", password=PASSWORD, tenant="acme").json()
    response = APIClient().post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
    assert response.status_code == 200, response.json()
    fresh = response.json()
    assert fresh["refresh"] != pair["refresh"]
    assert fresh["tenant"] == "acme"
    assert RefreshToken(fresh["refresh"])["tenant_id"] == RefreshToken(pair["refresh"])["tenant_id"]
    assert bearer(fresh["access"]).get("/api/v1/members").json()["tenant"] == "acme"


def test_refresh_checks_the_account_again(ann: Any) -> None:
    pair = sign_in(username="ann", password=PASSWORD, tenant="acme").json()
    logic.remove_member(logic.access_for_user(ann, "acme"), "ann")
    gone = APIClient().post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
    assert gone.status_code == 403
    assert "no longer a member" in gone.json()["error"]

    ann.is_active = False
    ann.save()
    disabled = APIClient().post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
    assert disabled.status_code == 401
    assert disabled.json()["error"].startswith("the account of this token no longer exists or is disabled")


def test_changing_the_password_ends_every_token(ann: Any) -> None:
    pair = sign_in(username="ann", password=PASSWORD).json()
    ann.set_password("another secret phrase")
    ann.save()
    response = bearer(pair["access"]).get("/api/v1/members")
    assert response.status_code == 401
    assert response.json()["error"].startswith("the account's password changed after this JWT was issued")
    refreshed = APIClient().post("/api/v1/auth/token/refresh", {"refresh": pair["refresh"]}, format="json")
    assert refreshed.status_code == 401
    assert "password changed" in refreshed.json()["error"]


def test_a_session_ends_after_its_maximum_length(ann: Any, settings: Any) -> None:
    subject = logic.TokenSubject(ann.pk, "ann")
    pair = auth.issue_tokens(subject)
    refresh = RefreshToken(pair.refresh)  # type: ignore[arg-type]
    refresh["auth_time"] = int(refresh["iat"]) - settings.OLLYSTACK_JWT_MAX_SESSION_SECONDS - 60
    response = APIClient().post("/api/v1/auth/token/refresh", {"refresh": str(refresh)}, format="json")
    assert response.status_code == 401
    assert "has reached its maximum length; sign in again at /api/v1/auth/token" in response.json()["error"]

    settings.OLLYSTACK_JWT_MAX_SESSION_SECONDS = 3600
    rotated = auth.refresh_tokens(auth.issue_tokens(subject).refresh)
    assert rotated.refresh_expires_at - rotated.access_expires_at < timedelta(hours=1)  # capped, not a day


def test_sign_in_is_rate_limited(ann: Any) -> None:
    for _ in range(30):
        sign_in(username="ann", password="guess")
    limited = sign_in(username="ann", password=PASSWORD)
    assert limited.status_code == 429
    assert "throttled" in limited.json()["error"].lower()
    assert int(limited["Retry-After"]) > 0


def test_token_endpoints_ignore_a_stale_authorization_header(ann: Any) -> None:
    client = bearer("olly_api_" + "x" * 43)
    response = client.post("/api/v1/auth/token", {"username": "ann", "password": PASSWORD}, format="json")
    assert response.status_code == 200


def test_schema_documents_bearer_and_the_token_endpoints(ann: Any) -> None:
    schema = APIClient().get("/api/schema/", {"format": "json"}).json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "cookieAuth" in schema["components"]["securitySchemes"]
    token = schema["paths"]["/api/v1/auth/token"]["post"]
    assert token["summary"] == "Get a JWT pair for an account (username and password)"
    assert {"200", "401", "429"} <= set(token["responses"])
    assert "/api/v1/auth/token/refresh" in schema["paths"]
