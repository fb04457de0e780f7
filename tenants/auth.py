"""DRF authentication with tenant API keys: ``Authorization: Bearer olly_api_…``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from tenants import logic

AUTH_HELP = "send the header `Authorization: Bearer olly_api_…` with an API key of your tenant"


class ApiKeyUser:
    """``request.user`` for API-key requests: authenticated, but not a Django user account."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, principal: logic.ApiPrincipal) -> None:
        self.principal = principal
        self.username = f"apikey:{principal.key_id}@{principal.tenant_name}"

    def __str__(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False


class ApiKeyAuthentication(BaseAuthentication):
    """Resolves the Bearer API key to an ``ApiPrincipal`` in ``request.auth``.

    No ``Authorization`` header means "not this scheme" (a browser session may still apply); a header
    that is present but unusable is rejected with the reason, so a caller always learns what to fix.
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiKeyUser, logic.ApiPrincipal] | None:
        header = get_authorization_header(request)
        if not header:
            return None
        try:
            text = header.decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(
                "the Authorization header must be ASCII; " + AUTH_HELP
            ) from None
        scheme, _, token = text.strip().partition(" ")
        if scheme.lower() != self.keyword.lower():
            raise exceptions.AuthenticationFailed(
                f"unsupported Authorization scheme {scheme!r}; " + AUTH_HELP
            )
        token = token.strip()
        if not token:
            raise exceptions.AuthenticationFailed("the Bearer token is empty; " + AUTH_HELP)
        if " " in token:
            raise exceptions.AuthenticationFailed("the Bearer token must not contain spaces; " + AUTH_HELP)
        try:
            principal = logic.check_api_key(token)
        except logic.KeyRejected as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        return ApiKeyUser(principal), principal

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="ollystack"'


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents the API key scheme in the OpenAPI schema."""

    target_class = ApiKeyAuthentication
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "olly_api_…",
            "description": "A tenant API key: `Authorization: Bearer olly_api_…`.",
        }
