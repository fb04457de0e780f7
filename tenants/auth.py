"""API authentication: ``Authorization: Bearer <token>`` with a tenant API key or a JWT.

One class reads the header and dispatches by the token's shape, so that a caller always gets the reason
its credentials were refused (an ingest key on the API, a revoked key, an expired JWT…) rather than the
silence of a scheme that "did not apply". Browser sessions are DRF's ``SessionAuthentication`` (with CSRF),
configured next to this class in ``REST_FRAMEWORK``.

JWTs are issued by ``POST /api/v1/auth/token`` for a Django account (username and password), signed with
``SECRET_KEY`` (HS256). A token may be bound to one tenant (claims ``tenant_id``/``tenant``); the role is
read from the membership on every request, never from the token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken, UntypedToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from tenants import logic

AUTH_HELP = (
    "send the header `Authorization: Bearer olly_api_…` with an API key of your tenant, or "
    "`Authorization: Bearer <JWT>` with an access token from POST /api/v1/auth/token"
)
TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 (a path, not a secret)
REFRESH_URL = "/api/v1/auth/token/refresh"
# Three base64url segments: header.payload.signature.
JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
KEY_HEAD = "olly_"
TENANT_ID_CLAIM = "tenant_id"
TENANT_CLAIM = "tenant"
AUTH_TIME_CLAIM = "auth_time"


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

    def get_username(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False


@dataclass(frozen=True)
class JwtCredentials:
    """``request.auth`` for JWT requests: the tenant the token was issued for, if any."""

    user_id: int
    tenant_id: str | None
    tenant_name: str | None
    expires_at: datetime


class BearerAuthentication(BaseAuthentication):
    """``Bearer olly_api_…`` → ``ApiPrincipal``; ``Bearer <JWT>`` → the Django user and ``JwtCredentials``.

    No ``Authorization`` header means "not this scheme" (a browser session may still apply); a header that
    is present but unusable is refused with the reason and what to do about it.
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
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
        if token.startswith(KEY_HEAD):
            return self._api_key(token)
        if JWT_SHAPE.match(token):
            return self._jwt(token)
        raise exceptions.AuthenticationFailed(
            "the Bearer token is neither an API key (API keys start with olly_api_) nor a JWT; " + AUTH_HELP
        )

    def _api_key(self, token: str) -> tuple[ApiKeyUser, logic.ApiPrincipal]:
        try:
            principal = logic.check_api_key(token)
        except logic.KeyRejected as exc:
            raise exceptions.AuthenticationFailed(str(exc)) from None
        return ApiKeyUser(principal), principal

    def _jwt(self, raw: str) -> tuple[Any, JwtCredentials]:
        try:
            token = UntypedToken(raw)  # type: ignore[arg-type]
        except ExpiredTokenError:
            raise exceptions.AuthenticationFailed(f"JWT expired; refresh it at {REFRESH_URL}") from None
        except TokenError:
            raise exceptions.AuthenticationFailed(
                f"JWT not valid (malformed, or not signed by this server); get a new one at {TOKEN_URL}"
            ) from None
        kind = token.get(jwt_settings.TOKEN_TYPE_CLAIM)
        if kind == RefreshToken.token_type:
            raise exceptions.AuthenticationFailed(
                f"this is a refresh token; exchange it at {REFRESH_URL} for an access token and send that"
            )
        if kind != AccessToken.token_type:
            raise exceptions.AuthenticationFailed(f"JWT is not an access token; get one at {TOKEN_URL}")
        user_id = token.get(jwt_settings.USER_ID_CLAIM)
        user = get_user_model().objects.filter(pk=user_id).first() if user_id is not None else None
        if user is None:
            raise exceptions.AuthenticationFailed("the account this JWT was issued for no longer exists")
        if not user.is_active:
            raise exceptions.AuthenticationFailed("the account this JWT was issued for is disabled")
        if jwt_settings.CHECK_REVOKE_TOKEN and token.get(
            jwt_settings.REVOKE_TOKEN_CLAIM
        ) != get_md5_hash_password(user.password):
            raise exceptions.AuthenticationFailed(
                f"the account's password changed after this JWT was issued; sign in again at {TOKEN_URL}"
            )
        credentials = JwtCredentials(
            user_id=user.pk,
            tenant_id=token.get(TENANT_ID_CLAIM),
            tenant_name=token.get(TENANT_CLAIM),
            expires_at=datetime.fromtimestamp(int(token["exp"]), tz=UTC),
        )
        return user, credentials

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="ollystack"'


# --- issuing tokens -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str
    access_expires_at: datetime
    refresh_expires_at: datetime
    tenant: str | None


def _expiry(token: Any) -> datetime:
    return datetime.fromtimestamp(int(token["exp"]), tz=UTC)


def _pair(refresh: RefreshToken, subject: logic.TokenSubject) -> TokenPair:
    access = refresh.access_token
    return TokenPair(
        access=str(access),
        refresh=str(refresh),
        access_expires_at=_expiry(access),
        refresh_expires_at=_expiry(refresh),
        tenant=subject.tenant.tenant_name if subject.tenant else None,
    )


def issue_tokens(subject: logic.TokenSubject) -> TokenPair:
    """An access and a refresh token for a user who just proved who they are."""
    user = get_user_model().objects.get(pk=subject.user_id)
    refresh = RefreshToken.for_user(user)
    refresh[AUTH_TIME_CLAIM] = int(refresh.current_time.timestamp())
    if subject.tenant is not None:
        refresh[TENANT_ID_CLAIM] = subject.tenant.tenant_id
        refresh[TENANT_CLAIM] = subject.tenant.tenant_name
    return _pair(refresh, subject)


def max_session() -> timedelta:
    return timedelta(seconds=settings.OLLYSTACK_JWT_MAX_SESSION_SECONDS)


def refresh_tokens(raw: str) -> TokenPair:
    """A new access token and a new refresh token (rotation) for a valid refresh token.

    The account, its password and (for a tenant-bound token) its membership are checked again, and a
    session ends ``OLLYSTACK_JWT_MAX_SESSION_SECONDS`` after the sign-in however often it is refreshed.
    Raises ``logic.TenantError`` subclasses with the reason.
    """
    try:
        refresh = RefreshToken(raw)  # type: ignore[arg-type]
    except ExpiredTokenError:
        raise logic.KeyRejected(f"refresh token expired; sign in again at {TOKEN_URL}") from None
    except TokenError:
        raise logic.KeyRejected(
            f"not a valid refresh token (malformed, an access token, or not signed by this server); "
            f"sign in at {TOKEN_URL}"
        ) from None
    signed_in = datetime.fromtimestamp(int(refresh.get(AUTH_TIME_CLAIM, refresh["iat"])), tz=UTC)
    if refresh.current_time - signed_in > max_session():
        raise logic.KeyRejected(
            f"this session started on {signed_in:%Y-%m-%d %H:%M} UTC and has reached its maximum length; "
            f"sign in again at {TOKEN_URL}"
        )
    subject = logic.token_subject_for_refresh(
        refresh[jwt_settings.USER_ID_CLAIM], refresh.get(TENANT_ID_CLAIM)
    )
    user = get_user_model().objects.get(pk=subject.user_id)
    if jwt_settings.CHECK_REVOKE_TOKEN and refresh.get(
        jwt_settings.REVOKE_TOKEN_CLAIM
    ) != get_md5_hash_password(user.password):
        raise logic.KeyRejected(f"the account's password changed; sign in again at {TOKEN_URL}")
    if jwt_settings.ROTATE_REFRESH_TOKENS:
        refresh.set_jti()
        refresh.set_exp()
        refresh.set_iat()
        session_end = int((signed_in + max_session()).timestamp())
        if refresh["exp"] > session_end:
            refresh["exp"] = session_end
    return _pair(refresh, subject)


class BearerAuthenticationScheme(OpenApiAuthenticationExtension):
    """Documents the Bearer scheme (API key or JWT) in the OpenAPI schema."""

    target_class = BearerAuthentication
    name = "bearer"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A tenant API key (`Bearer olly_api_…`; scopes read, write, admin) or an access "
            f"JWT from POST {TOKEN_URL} (short-lived; renew it with POST {REFRESH_URL}).",
        }
