"""API key authentication, exercised through a DRF view with the project's default settings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from tenants import logic
from tenants.auth import ApiKeyUser
from tenants.logic import Permission

pytestmark = pytest.mark.django_db


class Probe(APIView):
    required_permission = Permission.READ

    def get(self, request: Request) -> Response:
        assert isinstance(request.auth, logic.ApiPrincipal)
        return Response({"tenant_id": request.auth.tenant_id, "user": str(request.user)})


def call(header: str | None = None):
    factory = APIRequestFactory()
    request = factory.get("/probe") if header is None else factory.get("/probe", HTTP_AUTHORIZATION=header)
    response = Probe.as_view()(request)
    response.render()
    return response


@pytest.fixture
def acme():
    return logic.create_tenant("acme")


def test_valid_key_sets_principal(acme):
    key = logic.issue_api_key("acme")
    response = call(f"Bearer {key.raw}")
    assert response.status_code == 200
    assert response.data["tenant_id"] == acme.tenant_id


def test_missing_header_explains_the_header():
    response = call()
    assert response.status_code == 401
    assert "Authorization: Bearer olly_api_" in response.data["error"]
    assert "POST /api/v1/auth/token" in response.data["error"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Basic dXNlcjpwYXNz", "unsupported Authorization scheme 'Basic'"),
        ("Bearer", "the Bearer token is empty"),
        ("Bearer olly_api_" + "x" * 43, "API key not recognised"),
        ("Bearer something-else", "the Bearer token is neither an API key (API keys start with olly_api_)"),
        ("Bearer olly_something", "API key not recognised: API keys start with olly_api_"),
        ("Bearer a.b.c", "JWT not valid (malformed, or not signed by this server)"),
    ],
)
def test_malformed_or_unknown_credentials(acme, header, message):
    response = call(header)
    assert response.status_code == 401
    assert message in response.data["error"]


def test_ingest_key_on_the_api(acme):
    ingest = logic.issue_ingest_key("acme")
    response = call(f"Bearer {ingest.raw}")
    assert response.status_code == 401
    assert response.data == {"error": "this is an ingest key; the API needs an API key (olly_api_…)"}


def test_revoked_key(acme):
    key = logic.issue_api_key("acme")
    assert call(f"Bearer {key.raw}").status_code == 200
    logic.revoke_key(key.prefix)
    response = call(f"Bearer {key.raw}")
    assert response.status_code == 401
    today = timezone.now().strftime("%Y-%m-%d")
    assert response.data["error"].startswith(f"API key {key.prefix}… was revoked on {today}")


def test_expired_key(acme):
    key = logic.issue_api_key("acme", expires_at=timezone.now() - timedelta(minutes=5))
    response = call(f"Bearer {key.raw}")
    assert response.status_code == 401
    assert f"API key {key.prefix}… expired on" in response.data["error"]


def test_api_key_user_is_not_a_django_account(acme):
    key = logic.issue_api_key("acme")
    user = ApiKeyUser(logic.check_api_key(key.raw))
    assert user.is_authenticated
    assert not user.is_staff
    assert not user.has_perm("tenants.add_tenant")
    assert call(f"Bearer {key.raw}").data["user"] == f"apikey:{key.key_id}@acme"


def test_a_view_that_declares_nothing_is_refused(acme):
    """Fail closed: the default permission class refuses views without ``required_permission``."""
    user = get_user_model().objects.create_user("alice")
    logic.set_membership("acme", user, "owner")
    request = APIRequestFactory().get("/probe")
    force_authenticate(request, user=user)

    class WhoAmI(APIView):
        def get(self, request: Request) -> Response:
            return Response({"user": request.user.get_username()})

    response = WhoAmI.as_view()(request)
    assert response.status_code == 403
    assert "declares no required permission for GET" in response.data["error"]

    class Declared(WhoAmI):
        required_permission = Permission.READ

    request = APIRequestFactory().get("/probe")
    force_authenticate(request, user=user)
    assert Declared.as_view()(request).data == {"user": "alice"}
