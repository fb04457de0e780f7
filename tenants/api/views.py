"""Tenant endpoints: usage, members, keys, and the JWTs of signed-in accounts.

Views are thin: they parse, call one ``tenants.logic`` function and format the answer. Each declares
``required_permission`` (see ``tenants.logic.ROLE_PERMISSIONS``), enforced by ``TenantPermission``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from ingest import quotas
from ollystack.telemetry.api.access import ERRORS, TenantPermission, parse, tenant_access, tenant_id_for
from ollystack.telemetry.api.params import ErrorBody, TenantParam
from tenants import auth, logic
from tenants.logic import Permission
from tenants.models import ApiScope, Role


class QuotaSerializer(serializers.Serializer):
    rate_limit_records_per_second = serializers.IntegerField(
        allow_null=True, help_text="Sustained records per second; null: no rate limit."
    )
    rate_limit_burst = serializers.IntegerField(
        allow_null=True, help_text="Records accepted at once after a quiet period; null without a rate limit."
    )
    daily_records_cap = serializers.IntegerField(
        allow_null=True, help_text="Records per UTC day; null: unlimited."
    )
    daily_bytes_cap = serializers.IntegerField(
        allow_null=True, help_text="Uncompressed OTLP bytes per UTC day; null: unlimited."
    )


class SamplingSerializer(serializers.Serializer):
    trace_sample_rate = serializers.FloatField(help_text="Fraction of traces kept (1: all).")
    trace_slow_threshold_ms = serializers.IntegerField(help_text="Spans at least this slow are always kept.")


class UsageSerializer(serializers.Serializer):
    day = serializers.DateField(help_text="The UTC day counted.")
    records = serializers.IntegerField(help_text="Records accepted today.")
    bytes = serializers.IntegerField(help_text="Uncompressed OTLP bytes accepted today.")
    records_remaining = serializers.IntegerField(
        allow_null=True, help_text="Records left under the daily cap; null without a cap."
    )
    bytes_remaining = serializers.IntegerField(
        allow_null=True, help_text="Bytes left under the daily cap; null without a cap."
    )
    resets_at = serializers.DateTimeField(help_text="Next 00:00 UTC, when the daily counters restart.")


class TenantUsageSerializer(serializers.Serializer):
    tenant = serializers.CharField(help_text="Tenant name.")
    tenant_id = serializers.CharField()
    quota = QuotaSerializer()
    sampling = SamplingSerializer()
    usage = UsageSerializer(allow_null=True, help_text="Null when the quota store cannot be read.")
    usage_error = serializers.CharField(help_text="Why usage is null; empty otherwise.")
    quota_store = serializers.CharField(help_text="local (one server) or redis (shared by replicas).")


def _remaining(used: int, cap: int | None) -> int | None:
    return None if cap is None else max(0, cap - used)


def _body(report: quotas.TenantUsage) -> dict[str, Any]:
    policy, usage = report.policy, report.usage
    return {
        "tenant": report.tenant.tenant_name,
        "tenant_id": report.tenant.tenant_id,
        "quota": {
            "rate_limit_records_per_second": policy.rate_limit_per_second,
            "rate_limit_burst": policy.effective_burst,
            "daily_records_cap": policy.daily_records_cap,
            "daily_bytes_cap": policy.daily_bytes_cap,
        },
        "sampling": {
            "trace_sample_rate": policy.trace_sample_rate,
            "trace_slow_threshold_ms": policy.trace_slow_threshold_ms,
        },
        "usage": None
        if usage is None
        else {
            "day": usage.day,
            "records": usage.records,
            "bytes": usage.bytes,
            "records_remaining": _remaining(usage.records, policy.daily_records_cap),
            "bytes_remaining": _remaining(usage.bytes, policy.daily_bytes_cap),
            "resets_at": usage.resets_at,
        },
        "usage_error": report.usage_error,
        "quota_store": report.store,
    }


class UsageView(APIView):
    permission_classes = [TenantPermission]
    required_permission = Permission.READ

    @extend_schema(
        summary="Quotas, sampling and today's usage of your tenant",
        description="Today is the current UTC day. Usage counts what the ingest servers accepted; refused "
        "requests are not counted.",
        parameters=[TenantParam],
        responses={200: TenantUsageSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        parse(TenantParam, request)
        report = quotas.tenant_usage(tenant_id_for(request))
        return Response(TenantUsageSerializer(_body(report)).data)


# --- errors from the logic ------------------------------------------------------------------------------


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


@contextmanager
def answers() -> Iterator[None]:
    """Turns ``tenants.logic`` errors into HTTP answers that keep the logic's message."""
    try:
        yield
    except logic.PermissionRefused as exc:
        raise exceptions.PermissionDenied(str(exc)) from None
    except (logic.UnknownMember, logic.UnknownKey) as exc:
        raise exceptions.NotFound(str(exc)) from None
    except (logic.MemberExists, logic.LastOwner, logic.KeyAlreadyRevoked) as exc:
        raise Conflict(str(exc)) from None
    except (logic.BadCredentials, logic.KeyRejected) as exc:
        raise exceptions.AuthenticationFailed(str(exc)) from None
    except logic.TenantAccessDenied as exc:
        raise exceptions.PermissionDenied(str(exc)) from None
    except logic.TenantAmbiguous as exc:
        raise exceptions.ValidationError({"tenant": str(exc)}) from None
    except logic.TenantError as exc:
        raise exceptions.ValidationError(str(exc)) from None


CONFLICT = OpenApiResponse(ErrorBody, description="The change conflicts with the current state.")
NOT_FOUND = OpenApiResponse(ErrorBody, description="No such member or key in this tenant.")


# --- JWT ------------------------------------------------------------------------------------------------


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)
    tenant = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="Bind the token to one of your tenants (name). Without it, a user in several tenants "
        "names one with ?tenant=<name> on each request.",
    )


class RefreshRequestSerializer(serializers.Serializer):
    refresh = serializers.CharField(help_text="The refresh token of the last pair.")


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField(help_text="Send as `Authorization: Bearer <access>`.")
    refresh = serializers.CharField(help_text="Exchange at /api/v1/auth/token/refresh for a new pair.")
    token_type = serializers.CharField(help_text="Always Bearer.")
    access_expires_at = serializers.DateTimeField()
    refresh_expires_at = serializers.DateTimeField()
    expires_in = serializers.IntegerField(help_text="Seconds the access token is valid for.")
    tenant = serializers.CharField(allow_null=True, help_text="The tenant the token is bound to, if any.")


def _token_body(pair: auth.TokenPair) -> dict[str, Any]:
    return {
        "access": pair.access,
        "refresh": pair.refresh,
        "token_type": "Bearer",
        "access_expires_at": pair.access_expires_at,
        "refresh_expires_at": pair.refresh_expires_at,
        "expires_in": max(0, int((pair.access_expires_at - timezone.now()).total_seconds())),
        "tenant": pair.tenant,
    }


class PublicAuthView(APIView):
    """Token endpoints: credentials are in the body; a (possibly stale) Authorization header or session is
    not looked at, and refusals are 401 with a ``WWW-Authenticate`` challenge."""

    authentication_classes: list[Any] = []
    permission_classes = [TenantPermission]
    required_permission = Permission.PUBLIC

    def get_authenticate_header(self, request: Request) -> str:
        return auth.BearerAuthentication().authenticate_header(request)


class TokenView(PublicAuthView):
    """Signs an account in for API use."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "auth-token"

    @extend_schema(
        summary="Get a JWT pair for an account (username and password)",
        description="The access token is short-lived (OLLYSTACK_JWT_ACCESS_SECONDS, default 5 minutes); "
        "renew it with the refresh token at /api/v1/auth/token/refresh. Give `tenant` to bind the token to "
        "one of your tenants. Attempts are rate-limited per client address (OLLYSTACK_AUTH_TOKEN_RATE).",
        request=TokenRequestSerializer,
        responses={
            200: TokenPairSerializer,
            400: ERRORS[400],
            401: OpenApiResponse(ErrorBody, description="Wrong username or password, or a disabled account."),
            403: OpenApiResponse(ErrorBody, description="Not a member of the tenant asked for."),
            429: OpenApiResponse(ErrorBody, description="Too many attempts; retry after the delay given."),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        body = TokenRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        with answers():
            subject = logic.token_subject_for_login(
                data["username"], data["password"], data.get("tenant") or None
            )
        return Response(TokenPairSerializer(_token_body(auth.issue_tokens(subject))).data)


class TokenRefreshView(PublicAuthView):
    @extend_schema(
        summary="Exchange a refresh token for a new JWT pair",
        description="The old refresh token should be discarded (rotation). The account, its password and, "
        "for a tenant-bound token, its membership are checked again; a session ends "
        "OLLYSTACK_JWT_MAX_SESSION_SECONDS after sign-in however often it is refreshed.",
        request=RefreshRequestSerializer,
        responses={
            200: TokenPairSerializer,
            400: ERRORS[400],
            401: OpenApiResponse(ErrorBody, description="Expired or invalid refresh token; sign in again."),
            403: OpenApiResponse(ErrorBody, description="No longer a member of the token's tenant."),
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        body = RefreshRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with answers():
            pair = auth.refresh_tokens(body.validated_data["refresh"])
        return Response(TokenPairSerializer(_token_body(pair)).data)


# --- members --------------------------------------------------------------------------------------------


class MemberSerializer(serializers.Serializer):
    username = serializers.CharField()
    email = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices)
    joined_at = serializers.DateTimeField()


class MemberListSerializer(serializers.Serializer):
    tenant = serializers.CharField()
    members = MemberSerializer(many=True)


class AddMemberSerializer(serializers.Serializer):
    username = serializers.CharField(help_text="An existing account.")
    role = serializers.ChoiceField(choices=Role.choices, default=Role.VIEWER)


class ChangeRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


def _member(info: logic.MemberInfo) -> dict[str, Any]:
    return MemberSerializer(
        {"username": info.username, "email": info.email, "role": info.role, "joined_at": info.joined_at}
    ).data


USERNAME = OpenApiParameter("username", OpenApiTypes.STR, OpenApiParameter.PATH, description="Account name.")


class MembersView(APIView):
    permission_classes = [TenantPermission]
    required_permission = {"GET": Permission.READ, "POST": Permission.MANAGE_MEMBERS}

    @extend_schema(
        summary="Members of your tenant and their roles",
        parameters=[TenantParam],
        responses={200: MemberListSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        parse(TenantParam, request)
        access = tenant_access(request)
        members = [_member(info) for info in logic.list_members(access.tenant_id)]
        return Response({"tenant": access.tenant_name, "members": members})

    @extend_schema(
        summary="Add an account to your tenant (admin or owner; only owners grant owner)",
        parameters=[TenantParam],
        request=AddMemberSerializer,
        responses={201: MemberSerializer, 409: CONFLICT, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        parse(TenantParam, request)
        body = AddMemberSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with answers():
            info = logic.add_member(
                tenant_access(request), body.validated_data["username"], body.validated_data["role"]
            )
        return Response(_member(info), status=status.HTTP_201_CREATED)


class MemberView(APIView):
    permission_classes = [TenantPermission]
    required_permission = {"PATCH": Permission.MANAGE_MEMBERS, "DELETE": Permission.MANAGE_MEMBERS}

    @extend_schema(
        summary="Change a member's role (admin or owner; only owners grant or take owner)",
        parameters=[USERNAME, TenantParam],
        request=ChangeRoleSerializer,
        responses={200: MemberSerializer, 404: NOT_FOUND, 409: CONFLICT, **ERRORS},
    )
    def patch(self, request: Request, username: str) -> Response:
        parse(TenantParam, request)
        body = ChangeRoleSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        with answers():
            info = logic.change_member_role(tenant_access(request), username, body.validated_data["role"])
        return Response(_member(info))

    @extend_schema(
        summary="Remove a member (admin or owner; only owners remove owners; never the last owner)",
        parameters=[USERNAME, TenantParam],
        responses={204: None, 404: NOT_FOUND, 409: CONFLICT, **ERRORS},
    )
    def delete(self, request: Request, username: str) -> Response:
        parse(TenantParam, request)
        with answers():
            logic.remove_member(tenant_access(request), username)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- keys -----------------------------------------------------------------------------------------------


KINDS = (
    ("api", "API key (olly_api_…): reads and manages over this API"),
    ("ingest", "Ingest key (olly_ing_…)"),
)


class KeySerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The key's display prefix; use it to revoke the key.")
    kind = serializers.ChoiceField(choices=KINDS)
    name = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField(), help_text="API keys only.")
    status = serializers.ChoiceField(choices=["active", "expired", "revoked"])
    created_at = serializers.DateTimeField()
    created_by = serializers.CharField(help_text="Account that created the key; empty for keys made by keys.")
    last_used_at = serializers.DateTimeField(allow_null=True, help_text="API keys: to the minute.")
    expires_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class KeyListSerializer(serializers.Serializer):
    tenant = serializers.CharField()
    keys = KeySerializer(many=True)


class KeyListParams(TenantParam):
    kind = serializers.ChoiceField(choices=KINDS, required=False, help_text="Only keys of this kind.")
    include_revoked = serializers.BooleanField(required=False, default=False)


class CreateKeySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=KINDS, default="api")
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiScope.choices),
        required=False,
        default=["read"],
        help_text="API keys: read, write, admin (admin includes the others). Default read.",
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="API keys: optional.")


class CreatedKeySerializer(KeySerializer):
    key = serializers.CharField(help_text="The secret. Shown this once; only its hash is stored.")


def _key(info: logic.KeyInfo) -> dict[str, Any]:
    return {
        "id": info.prefix,
        "kind": info.kind,
        "name": info.name,
        "scopes": list(info.scopes),
        "status": info.status,
        "created_at": info.created_at,
        "created_by": info.created_by,
        "last_used_at": info.last_used_at,
        "expires_at": info.expires_at,
        "revoked_at": info.revoked_at,
    }


class KeysView(APIView):
    permission_classes = [TenantPermission]
    required_permission = Permission.MANAGE_KEYS

    @extend_schema(
        summary="API and ingest keys of your tenant (admin or owner)",
        parameters=[KeyListParams],
        responses={200: KeyListSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = parse(KeyListParams, request)
        access = tenant_access(request)
        infos = logic.list_keys(access.tenant_id, params.get("kind"), params["include_revoked"])
        return Response(
            KeyListSerializer({"tenant": access.tenant_name, "keys": [_key(i) for i in infos]}).data
        )

    @extend_schema(
        summary="Create an API or ingest key (admin or owner); the secret is in this answer only",
        parameters=[TenantParam],
        request=CreateKeySerializer,
        responses={201: CreatedKeySerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        parse(TenantParam, request)
        body = CreateKeySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        access = tenant_access(request)
        with answers():
            issued = logic.create_key(
                access, data["kind"], data["name"], data["scopes"], data.get("expires_at")
            )
        info = next(i for i in logic.list_keys(access.tenant_id, issued.kind) if i.prefix == issued.prefix)
        created = CreatedKeySerializer({**_key(info), "key": issued.raw}).data
        return Response(created, status=status.HTTP_201_CREATED)


class KeyRevokeView(APIView):
    permission_classes = [TenantPermission]
    required_permission = Permission.MANAGE_KEYS

    @extend_schema(
        summary="Revoke a key of your tenant (admin or owner); it stops working at once",
        parameters=[
            OpenApiParameter(
                "key_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The key's id (prefix)."
            ),
            TenantParam,
        ],
        request=None,
        responses={200: KeySerializer, 404: NOT_FOUND, 409: CONFLICT, **ERRORS},
    )
    def post(self, request: Request, key_id: str) -> Response:
        parse(TenantParam, request)
        access = tenant_access(request)
        with answers():
            revoked = logic.revoke_tenant_key(access, key_id)
        infos = logic.list_keys(access.tenant_id, revoked.kind, include_revoked=True)
        info = next(i for i in infos if i.prefix == revoked.prefix)
        return Response(KeySerializer(_key(info)).data)
