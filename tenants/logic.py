"""Tenant state: tenants, members and keys. The only module that changes it.

Entry points (admin, the ``tenant`` command, the API authentication, the ingest key cache) call these
functions and get frozen dataclasses back; nothing outside this module writes tenant models.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from django.contrib.auth import authenticate, get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from tenants.models import (
    ApiKey,
    ApiScope,
    IngestKey,
    KeyBase,
    Membership,
    Role,
    Tenant,
    tenant_name_validator,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)

INGEST_KEY_PREFIX = "olly_ing_"
API_KEY_PREFIX = "olly_api_"
# Characters of the random part kept in the display prefix (e.g. ``olly_api_Ab3dE-9z``).
PREFIX_RANDOM_CHARS = 8
KEY_LENGTH = len(API_KEY_PREFIX) + 43  # secrets.token_urlsafe(32) is 43 characters
API_SCOPES: tuple[str, ...] = tuple(ApiScope.values)
DEFAULT_TENANT = "default"
BOOTSTRAP_FILE = "bootstrap.json"
LAST_USED_RESOLUTION = timedelta(minutes=1)

KeyKind = Literal["ingest", "api"]


# --- errors -----------------------------------------------------------------------------------------


class TenantError(Exception):
    """A request about tenants or keys that cannot be carried out; the message says what to fix."""


class InvalidTenantName(TenantError):
    pass


class TenantExists(TenantError):
    pass


class UnknownTenant(TenantError):
    pass


class UnknownKey(TenantError):
    pass


class AmbiguousKey(TenantError):
    pass


class KeyAlreadyRevoked(TenantError):
    pass


class InvalidScopes(TenantError):
    pass


class TenantAccessDenied(TenantError):
    pass


class TenantAmbiguous(TenantError):
    pass


class InvalidPolicy(TenantError):
    pass


class KeyRejected(TenantError):
    """An API credential that was presented but cannot be used."""


class PermissionRefused(TenantError):
    """The caller's role or key scopes do not allow the action in this tenant."""


class BadCredentials(TenantError):
    """Username and password do not match an active account."""


class UnknownUser(TenantError):
    pass


class UnknownMember(TenantError):
    pass


class MemberExists(TenantError):
    pass


class LastOwner(TenantError):
    """The change would leave a tenant without an owner, so nobody could manage its owners again."""


# --- results ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantCreated:
    tenant_id: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class TenantInfo:
    tenant_id: str
    name: str
    display_name: str
    is_active: bool
    created_at: datetime
    active_ingest_keys: int
    active_api_keys: int
    members: int


@dataclass(frozen=True)
class TenantRef:
    tenant_id: str
    tenant_name: str


@dataclass(frozen=True)
class IssuedKey:
    raw: str
    key_id: int
    prefix: str
    kind: KeyKind = "api"
    tenant_id: str = ""
    tenant_name: str = ""
    scopes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RevokedKey:
    kind: KeyKind
    key_id: int
    prefix: str
    tenant_name: str
    revoked_at: datetime


@dataclass(frozen=True)
class TenantPolicy:
    """What the ingest path enforces for a tenant: quotas (None = unlimited), trace sampling and the
    retention written on each row."""

    rate_limit_per_second: int | None = None
    burst: int | None = None  # None: twice the rate
    daily_records_cap: int | None = None
    daily_bytes_cap: int | None = None  # uncompressed OTLP bytes
    trace_sample_rate: float = 1.0
    trace_slow_threshold_ms: int = 1000
    # days each stored row is kept, per signal (written with the row; see docs/storage.md)
    retention_days_traces: int = 30
    retention_days_logs: int = 30
    retention_days_metrics: int = 90

    @property
    def effective_burst(self) -> int | None:
        """Size of the token bucket, or None without a rate limit."""
        if self.rate_limit_per_second is None:
            return None
        return self.burst if self.burst is not None else 2 * self.rate_limit_per_second

    @property
    def limited(self) -> bool:
        return (
            self.rate_limit_per_second is not None
            or self.daily_records_cap is not None
            or self.daily_bytes_cap is not None
        )


# Tenant model field → TenantPolicy attribute.
POLICY_FIELDS: dict[str, str] = {
    "rate_limit_records_per_second": "rate_limit_per_second",
    "rate_limit_burst": "burst",
    "daily_records_cap": "daily_records_cap",
    "daily_bytes_cap": "daily_bytes_cap",
    "trace_sample_rate": "trace_sample_rate",
    "trace_slow_threshold_ms": "trace_slow_threshold_ms",
    "retention_days_traces": "retention_days_traces",
    "retention_days_logs": "retention_days_logs",
    "retention_days_metrics": "retention_days_metrics",
}


@dataclass(frozen=True)
class IngestPrincipal:
    tenant_id: str
    tenant_name: str
    key_id: int
    policy: TenantPolicy = TenantPolicy()


@dataclass(frozen=True)
class ApiPrincipal:
    tenant_id: str
    tenant_name: str
    key_id: int
    scopes: tuple[str, ...]
    prefix: str = ""

    def allows(self, scope: str) -> bool:
        """``admin`` carries every scope; the others are granted one by one."""
        return scope in self.scopes or ApiScope.ADMIN in self.scopes


@dataclass(frozen=True)
class BootstrapResult:
    created: bool
    credentials: dict[str, str]
    path: Path | None = field(default=None)


# --- roles ------------------------------------------------------------------------------------------


class Permission(StrEnum):
    """What an API endpoint requires. Every endpoint declares one (``required_permission``)."""

    PUBLIC = "public"  # no credentials (signing in, refreshing a token)
    READ = "read"  # telemetry, usage, the member list
    WRITE = "write"  # telemetry-side objects: dashboards, alert rules, saved queries
    MANAGE_KEYS = "manage_keys"  # create, list and revoke API and ingest keys
    MANAGE_MEMBERS = "manage_members"  # add, change and remove members who are not owners
    MANAGE_OWNERS = "manage_owners"  # grant or take the owner role; tenant deletion


_VIEWER = frozenset({Permission.READ})
_EDITOR = _VIEWER | {Permission.WRITE}
_ADMIN = _EDITOR | {Permission.MANAGE_KEYS, Permission.MANAGE_MEMBERS}
_OWNER = _ADMIN | {Permission.MANAGE_OWNERS}

# The one table of who may do what. A membership role grants its row; an API key the union of its
# scopes' rows. No scope reaches owner actions: changing who owns a tenant takes a signed-in owner.
ROLE_PERMISSIONS: Mapping[str, frozenset[Permission]] = {
    Role.VIEWER: _VIEWER,
    Role.EDITOR: _EDITOR,
    Role.ADMIN: _ADMIN,
    Role.OWNER: _OWNER,
}
SCOPE_PERMISSIONS: Mapping[str, frozenset[Permission]] = {
    ApiScope.READ: frozenset({Permission.READ}),
    ApiScope.WRITE: frozenset({Permission.WRITE}),
    ApiScope.ADMIN: _ADMIN,
}
# Weakest first: the roles and scopes named in refusals ("needs admin or owner").
ROLE_ORDER: tuple[str, ...] = tuple(r.value for r in (Role.VIEWER, Role.EDITOR, Role.ADMIN, Role.OWNER))
SCOPE_ORDER: tuple[str, ...] = tuple(s.value for s in (ApiScope.READ, ApiScope.WRITE, ApiScope.ADMIN))
PERMISSION_TEXT: Mapping[Permission, str] = {
    Permission.READ: "reading this tenant's data",
    Permission.WRITE: "changing dashboards and alert rules",
    Permission.MANAGE_KEYS: "managing API and ingest keys",
    Permission.MANAGE_MEMBERS: "managing members",
    Permission.MANAGE_OWNERS: "managing owners",
}


def roles_with(permission: Permission) -> tuple[str, ...]:
    return tuple(role for role in ROLE_ORDER if permission in ROLE_PERMISSIONS[role])


def scopes_with(permission: Permission) -> tuple[str, ...]:
    return tuple(scope for scope in SCOPE_ORDER if permission in SCOPE_PERMISSIONS[scope])


def permissions_of_scopes(scopes: Iterable[str]) -> frozenset[Permission]:
    granted: frozenset[Permission] = frozenset()
    for scope in scopes:
        granted |= SCOPE_PERMISSIONS.get(scope, frozenset())
    return granted


@dataclass(frozen=True)
class TenantAccess:
    """Who acts, for which tenant, allowed to do what: the result of authorising one request."""

    tenant_id: str
    tenant_name: str
    permissions: frozenset[Permission]
    role: str | None = None  # membership role of a signed-in user (superusers act as owner)
    key_prefix: str | None = None  # set when an API key acts
    scopes: tuple[str, ...] = ()
    user_id: int | None = None

    def allows(self, permission: Permission) -> bool:
        return permission == Permission.PUBLIC or permission in self.permissions

    def require(self, permission: Permission) -> None:
        """``PermissionRefused`` naming what would allow the action."""
        if self.allows(permission):
            return
        what = PERMISSION_TEXT.get(permission, str(permission))
        if self.key_prefix is not None:
            usable = scopes_with(permission)
            if not usable:
                roles = " or ".join(roles_with(permission))
                raise PermissionRefused(
                    f"{what} in tenant {self.tenant_name} needs a signed-in {roles}; no key scope allows it"
                )
            raise PermissionRefused(
                f"API key lacks the {usable[0]!r} scope (it has {', '.join(self.scopes) or 'none'}); "
                f"{what} needs a key with scope {' or '.join(usable)}: create one with "
                f"`manage.py tenant create-key {self.tenant_name} --kind api --scopes {usable[0]}` "
                "or POST /api/v1/keys"
            )
        raise PermissionRefused(
            f"your role in tenant {self.tenant_name} is {self.role}; {what} needs "
            f"{' or '.join(roles_with(permission))}; ask an owner or admin of {self.tenant_name}"
        )


def access_for_key(principal: ApiPrincipal) -> TenantAccess:
    """An API key acts for its own tenant with the permissions of its scopes."""
    prefix = (
        principal.prefix
        or ApiKey.objects.filter(pk=principal.key_id).values_list("prefix", flat=True).first()
    )
    return TenantAccess(
        tenant_id=principal.tenant_id,
        tenant_name=principal.tenant_name,
        permissions=permissions_of_scopes(principal.scopes),
        key_prefix=prefix or f"api:{principal.key_id}",
        scopes=principal.scopes,
    )


def access_for_user(
    user: User, tenant_name: str | None = None, bound_tenant_id: str | None = None
) -> TenantAccess:
    """The tenant a signed-in user acts for and what their membership allows there.

    ``tenant_name`` is the caller's explicit choice (``?tenant=``); without it a user with one membership
    gets that tenant and a user with several must choose. ``bound_tenant_id`` comes from a JWT issued for
    one tenant: the choice is then made, and naming another tenant is refused. The role is read now, not
    taken from the token, so a demotion or removal applies to the next request.
    """
    memberships = Membership.objects.filter(user_id=user.pk, tenant__is_active=True).select_related("tenant")
    is_superuser = bool(getattr(user, "is_superuser", False))
    if bound_tenant_id is not None:
        membership = memberships.filter(tenant_id=bound_tenant_id).first()
        bound = (
            membership.tenant if membership is not None else Tenant.objects.filter(pk=bound_tenant_id).first()
        )
        bound_name = bound.name if bound is not None else bound_tenant_id
        if tenant_name and tenant_name not in (bound_name, str(bound_tenant_id)):
            raise TenantAccessDenied(
                f"this token was issued for tenant {bound_name}; it cannot act for tenant {tenant_name}; "
                f"get a token for {tenant_name} from POST /api/v1/auth/token"
            )
        if membership is not None:
            return _user_access(user, membership.tenant, membership.role)
        if is_superuser and bound is not None and bound.is_active:
            return _user_access(user, bound, Role.OWNER)
        raise TenantAccessDenied(f"you are no longer a member of an active tenant named {bound_name!r}")
    if tenant_name:
        membership = memberships.filter(Q(tenant__name=tenant_name) | _id_match(tenant_name)).first()
        if membership is not None:
            return _user_access(user, membership.tenant, membership.role)
        if is_superuser:
            tenant = Tenant.objects.filter(
                Q(name=tenant_name) | _id_match(tenant_name, ""), is_active=True
            ).first()
            if tenant is not None:
                return _user_access(user, tenant, Role.OWNER)
        raise TenantAccessDenied(f"you are not a member of an active tenant named {tenant_name!r}")
    found = list(memberships[:50])
    if not found:
        raise TenantAccessDenied(
            "your account belongs to no tenant; ask a tenant owner to add you, or use an API key"
        )
    if len(found) > 1:
        names = sorted(m.tenant.name for m in found)
        raise TenantAmbiguous(f"you belong to several tenants ({', '.join(names)}); add ?tenant=<name>")
    return _user_access(user, found[0].tenant, found[0].role)


def _id_match(text: str, prefix: str = "tenant__") -> Q:
    """Matches the tenant whose id is ``text``, or nothing when it is not a UUID."""
    try:
        return Q(**{f"{prefix}pk" if prefix else "pk": uuid.UUID(text)})
    except ValueError:
        return Q(pk__in=[])


def _user_access(user: User, tenant: Tenant, role: str) -> TenantAccess:
    return TenantAccess(
        tenant_id=str(tenant.pk),
        tenant_name=tenant.name,
        permissions=ROLE_PERMISSIONS[role],
        role=role,
        user_id=user.pk,
    )


# --- keys -------------------------------------------------------------------------------------------


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def display_prefix(raw: str) -> str:
    head = API_KEY_PREFIX if raw.startswith(API_KEY_PREFIX) else INGEST_KEY_PREFIX
    return raw[: len(head) + PREFIX_RANDOM_CHARS]


def _model_for(kind: KeyKind) -> type[IngestKey] | type[ApiKey]:
    return IngestKey if kind == "ingest" else ApiKey


def _new_raw_key(kind: KeyKind) -> tuple[str, str]:
    model = _model_for(kind)
    head = INGEST_KEY_PREFIX if kind == "ingest" else API_KEY_PREFIX
    while True:
        raw = head + secrets.token_urlsafe(32)
        prefix = display_prefix(raw)
        if not model.objects.filter(prefix=prefix).exists():
            return raw, prefix


def _resolve_tenant(tenant: Tenant | str | uuid.UUID) -> Tenant:
    if isinstance(tenant, Tenant):
        return tenant
    text = str(tenant).strip()
    try:
        as_uuid: uuid.UUID | None = uuid.UUID(text)
    except ValueError:
        as_uuid = None
    found = (
        Tenant.objects.filter(pk=as_uuid).first()
        if as_uuid is not None
        else Tenant.objects.filter(name=text).first()
    )
    if found is None:
        raise UnknownTenant(f"no tenant named {text!r}; `manage.py tenant list` shows the tenants")
    return found


def normalise_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    cleaned = tuple(dict.fromkeys(s.strip().lower() for s in scopes if s.strip()))
    if not cleaned:
        raise InvalidScopes(f"an API key needs at least one scope: {', '.join(API_SCOPES)}")
    unknown = [s for s in cleaned if s not in API_SCOPES]
    if unknown:
        raise InvalidScopes(f"unknown scope {', '.join(unknown)}; choose from {', '.join(API_SCOPES)}")
    return cleaned


def _issue(
    kind: KeyKind,
    tenant: Tenant | str | uuid.UUID,
    name: str,
    created_by: User | None,
    **extra: Any,
) -> IssuedKey:
    target = _resolve_tenant(tenant)
    model = _model_for(kind)
    for _attempt in range(3):
        raw, prefix = _new_raw_key(kind)
        try:
            with transaction.atomic():
                key = model.objects.create(
                    tenant=target,
                    name=name,
                    prefix=prefix,
                    key_hash=hash_key(raw),
                    created_by=created_by,
                    **extra,
                )
        except IntegrityError:  # a concurrent issue took the same prefix
            continue
        log.info("key issued kind=%s tenant=%s prefix=%s", kind, target.name, prefix)
        return IssuedKey(
            raw=raw,
            key_id=key.pk,
            prefix=prefix,
            kind=kind,
            tenant_id=str(target.pk),
            tenant_name=target.name,
            scopes=tuple(extra.get("scopes", ())),
        )
    raise TenantError("could not allocate a unique key prefix; try again")


def issue_ingest_key(
    tenant: Tenant | str | uuid.UUID, name: str = "", *, created_by: User | None = None
) -> IssuedKey:
    """A new ingest key; ``IssuedKey.raw`` is the only copy of the secret."""
    return _issue("ingest", tenant, name, created_by)


def issue_api_key(
    tenant: Tenant | str | uuid.UUID,
    name: str = "",
    scopes: Iterable[str] = ("read",),
    *,
    expires_at: datetime | None = None,
    created_by: User | None = None,
) -> IssuedKey:
    """A new API key with the given scopes; ``IssuedKey.raw`` is the only copy of the secret."""
    return _issue(
        "api", tenant, name, created_by, scopes=list(normalise_scopes(scopes)), expires_at=expires_at
    )


def _find_key(prefix_or_id: str | int) -> tuple[KeyKind, KeyBase]:
    text = str(prefix_or_id).strip().removesuffix("…").removesuffix("...")
    kinds: tuple[KeyKind, ...] = ("ingest", "api")
    if text.startswith((INGEST_KEY_PREFIX, API_KEY_PREFIX)):
        kind: KeyKind = "ingest" if text.startswith(INGEST_KEY_PREFIX) else "api"
        model = _model_for(kind)
        if len(text) >= KEY_LENGTH:
            exact = model.objects.select_related("tenant").filter(key_hash=hash_key(text)).first()
            if exact is not None:
                return kind, exact
        matches = list(model.objects.select_related("tenant").filter(prefix__startswith=text[:32])[:3])
        exact_prefix = [k for k in matches if k.prefix == text]
        if exact_prefix:
            return kind, exact_prefix[0]
        if len(matches) == 1:
            return kind, matches[0]
        if len(matches) > 1:
            raise AmbiguousKey(f"{text} matches several keys; give the full prefix shown by the admin")
        raise UnknownKey(f"no {kind} key starts with {text}")
    qualifier, _, number = text.partition(":")
    if number and qualifier in ("ingest", "api"):
        kinds = ("ingest",) if qualifier == "ingest" else ("api",)
        text = number
    if not text.isdigit():
        raise UnknownKey(
            f"{text!r} is neither a key prefix (olly_ing_… / olly_api_…) nor a key id (ingest:ID / api:ID)"
        )
    found = [
        (kind, key)
        for kind in kinds
        if (key := _model_for(kind).objects.select_related("tenant").filter(pk=int(text)).first())
    ]
    if not found:
        raise UnknownKey(f"no key with id {text}")
    if len(found) > 1:
        raise AmbiguousKey(
            f"id {text} is both an ingest key ({found[0][1].prefix}…) and an API key "
            f"({found[1][1].prefix}…); use ingest:{text}, api:{text} or the prefix"
        )
    return found[0]


def revoke_key(prefix_or_id: str | int) -> RevokedKey:
    """Revoke an ingest or API key by display prefix, full key, id, ``ingest:ID`` or ``api:ID``."""
    kind, key = _find_key(prefix_or_id)
    tenant_name = key.tenant.name  # type: ignore[attr-defined]
    if key.revoked_at is not None:
        raise KeyAlreadyRevoked(
            f"{kind} key {key.prefix}… of tenant {tenant_name} was already revoked on {_when(key.revoked_at)}"
        )
    now = timezone.now()
    _model_for(kind).objects.filter(pk=key.pk).update(revoked_at=now)
    log.info("key revoked kind=%s tenant=%s prefix=%s", kind, tenant_name, key.prefix)
    return RevokedKey(kind=kind, key_id=key.pk, prefix=key.prefix, tenant_name=tenant_name, revoked_at=now)


def load_ingest_keys() -> dict[str, IngestPrincipal]:
    """Key hash → principal (with the tenant's policy) for every usable ingest key, in one query."""
    rows = IngestKey.objects.filter(revoked_at__isnull=True, tenant__is_active=True).values_list(
        "key_hash", "tenant_id", "tenant__name", "id", *(f"tenant__{name}" for name in POLICY_FIELDS)
    )
    policies: dict[tuple[Any, ...], TenantPolicy] = {}  # one shared instance per tenant
    principals = {}
    for key_hash, tenant_id, name, key_id, *values in rows:
        policy = policies.get((tenant_id, *values))
        if policy is None:
            policy = policies[(tenant_id, *values)] = _policy_from(values)
        principals[key_hash] = IngestPrincipal(str(tenant_id), name, key_id, policy)
    return principals


def load_revoked_ingest_keys() -> frozenset[str]:
    """Hashes of revoked ingest keys, so the ingest path can say "revoked" rather than "not recognised"."""
    return frozenset(IngestKey.objects.filter(revoked_at__isnull=False).values_list("key_hash", flat=True))


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def check_api_key(raw: str) -> ApiPrincipal:
    """The principal for an API key, or ``KeyRejected`` saying why the key cannot be used."""
    raw = raw.strip()
    if raw.startswith(INGEST_KEY_PREFIX):
        raise KeyRejected("this is an ingest key; the API needs an API key (olly_api_…)")
    if not raw.startswith(API_KEY_PREFIX):
        raise KeyRejected("API key not recognised: API keys start with olly_api_")
    key = ApiKey.objects.select_related("tenant").filter(key_hash=hash_key(raw)).first()
    if key is None:
        raise KeyRejected("API key not recognised")
    if key.revoked_at is not None:
        raise KeyRejected(f"API key {key.prefix}… was revoked on {_when(key.revoked_at)}")
    now = timezone.now()
    if key.expires_at is not None and key.expires_at <= now:
        raise KeyRejected(f"API key {key.prefix}… expired on {_when(key.expires_at)}; create a new one")
    if not key.tenant.is_active:
        raise KeyRejected(f"tenant {key.tenant.name} is disabled")
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return ApiPrincipal(
        tenant_id=str(key.tenant_id),
        tenant_name=key.tenant.name,
        key_id=key.pk,
        scopes=tuple(key.scopes or ()),
        prefix=key.prefix,
    )


def authenticate_api_key(raw: str) -> ApiPrincipal | None:
    try:
        return check_api_key(raw)
    except KeyRejected:
        return None


# --- tenants ----------------------------------------------------------------------------------------


def create_tenant(name: str, display_name: str = "") -> TenantCreated:
    name = name.strip()
    try:
        tenant_name_validator(name)
    except ValidationError as exc:
        raise InvalidTenantName(f"tenant name {name!r} is not valid: {exc.messages[0]}") from None
    try:
        with transaction.atomic():
            tenant = Tenant.objects.create(name=name, display_name=display_name)
    except IntegrityError:
        raise TenantExists(f"tenant {name} already exists") from None
    log.info("tenant created tenant=%s tenant_id=%s", tenant.name, tenant.pk)
    return TenantCreated(tenant_id=str(tenant.pk), name=tenant.name, created_at=tenant.created_at)


def update_tenant(
    tenant: Tenant | str | uuid.UUID, *, display_name: str | None = None, is_active: bool | None = None
) -> TenantInfo:
    target = _resolve_tenant(tenant)
    changes: dict[str, Any] = {}
    if display_name is not None:
        changes["display_name"] = display_name
    if is_active is not None:
        changes["is_active"] = is_active
    if changes:
        Tenant.objects.filter(pk=target.pk).update(**changes)
        log.info("tenant updated tenant=%s fields=%s", target.name, ",".join(sorted(changes)))
    return _tenant_infos(Tenant.objects.filter(pk=target.pk))[0]


def _policy_from(values: Iterable[Any]) -> TenantPolicy:
    """A policy from the values of ``POLICY_FIELDS``, in that order."""
    return TenantPolicy(**dict(zip(POLICY_FIELDS.values(), values, strict=True)))


def _policy_of(tenant: Tenant) -> TenantPolicy:
    return _policy_from(getattr(tenant, name) for name in POLICY_FIELDS)


def tenant_policy(tenant: Tenant | str | uuid.UUID) -> tuple[TenantRef, TenantPolicy]:
    """A tenant and its current policy, read from the database (not the ingest path's snapshot)."""
    target = _resolve_tenant(tenant)
    return TenantRef(str(target.pk), target.name), _policy_of(target)


def set_tenant_policy(tenant: Tenant | str | uuid.UUID, policy: TenantPolicy) -> TenantPolicy:
    """Replace a tenant's quotas, sampling and retention; the ingest path applies them at its next key
    refresh."""
    target = _resolve_tenant(tenant)
    for field_name, attribute in POLICY_FIELDS.items():
        setattr(target, field_name, getattr(policy, attribute))
    try:
        target.full_clean(exclude=["name", "display_name", "is_active"])
    except ValidationError as exc:
        problems = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in exc.message_dict.items())
        raise InvalidPolicy(f"policy for tenant {target.name} is not valid: {problems}") from None
    Tenant.objects.filter(pk=target.pk).update(
        **{field_name: getattr(policy, attribute) for field_name, attribute in POLICY_FIELDS.items()}
    )
    log.info(
        "tenant policy set tenant=%s %s",
        target.name,
        " ".join(f"{attribute}={getattr(policy, attribute)}" for attribute in POLICY_FIELDS.values()),
    )
    return _policy_of(target)


def _tenant_infos(queryset: Any) -> list[TenantInfo]:
    rows = queryset.annotate(
        n_ingest=Count("ingest_keys", filter=Q(ingest_keys__revoked_at__isnull=True), distinct=True),
        n_api=Count("api_keys", filter=Q(api_keys__revoked_at__isnull=True), distinct=True),
        n_members=Count("memberships", distinct=True),
    ).order_by("name")
    return [
        TenantInfo(
            tenant_id=str(t.pk),
            name=t.name,
            display_name=t.display_name,
            is_active=t.is_active,
            created_at=t.created_at,
            active_ingest_keys=t.n_ingest,
            active_api_keys=t.n_api,
            members=t.n_members,
        )
        for t in rows
    ]


def list_tenants() -> list[TenantInfo]:
    return _tenant_infos(Tenant.objects.all())


def set_membership(tenant: Tenant | str | uuid.UUID, user: User, role: str) -> None:
    """Give ``user`` ``role`` in ``tenant`` (creating or updating the membership)."""
    if role not in Role.values:
        raise TenantError(f"unknown role {role!r}; choose from {', '.join(Role.values)}")
    target = _resolve_tenant(tenant)
    Membership.objects.update_or_create(tenant=target, user=user, defaults={"role": role})
    log.info("membership set tenant=%s user_id=%s role=%s", target.name, user.pk, role)


def user_tenants(user: User) -> list[tuple[str, str]]:
    """(name, role) of each active tenant the user may act for, by name; superusers act as owner anywhere."""
    roles = dict(
        Membership.objects.filter(user_id=user.pk, tenant__is_active=True).values_list("tenant__name", "role")
    )
    if getattr(user, "is_superuser", False):
        for name in Tenant.objects.filter(is_active=True).values_list("name", flat=True):
            roles.setdefault(name, Role.OWNER.value)
    return sorted(roles.items())


def tenant_for_user(user: User, tenant_name: str | None = None) -> TenantRef:
    """The tenant a signed-in user acts for: their only one, or the one they name."""
    access = access_for_user(user, tenant_name)
    return TenantRef(access.tenant_id, access.tenant_name)


# --- members ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberInfo:
    username: str
    email: str
    role: str
    joined_at: datetime


def _member_info(membership: Membership) -> MemberInfo:
    user = membership.user
    return MemberInfo(
        username=user.get_username(),
        email=getattr(user, "email", "") or "",
        role=membership.role,
        joined_at=membership.created_at,
    )


def list_members(tenant_id: str) -> list[MemberInfo]:
    rows = Membership.objects.filter(tenant_id=tenant_id).select_related("user").order_by("user__username")
    return [_member_info(m) for m in rows]


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise TenantError(f"unknown role {role!r}; choose from {', '.join(ROLE_ORDER)}")


def _owner_guard(acting: TenantAccess, action: str) -> None:
    if not acting.allows(Permission.MANAGE_OWNERS):
        raise PermissionRefused(
            f"only an owner of tenant {acting.tenant_name} may {action}; ask one of its owners"
        )


def _membership(tenant_id: str, username: str, tenant_name: str) -> Membership:
    found = (
        Membership.objects.select_related("user", "tenant")
        .filter(tenant_id=tenant_id, user__username=username)
        .first()
    )
    if found is None:
        raise UnknownMember(
            f"{username!r} is not a member of tenant {tenant_name}; GET /api/v1/members lists them"
        )
    return found


def _other_owners(membership: Membership) -> bool:
    return (
        Membership.objects.filter(tenant_id=membership.tenant_id, role=Role.OWNER)
        .exclude(pk=membership.pk)
        .exists()
    )


def add_member(acting: TenantAccess, username: str, role: str) -> MemberInfo:
    """Add an existing account to the acting tenant. Granting owner takes an owner."""
    _check_role(role)
    if role == Role.OWNER:
        _owner_guard(acting, "grant the owner role")
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise UnknownUser(
            f"no account named {username!r}; the person signs in once (or an administrator creates the "
            "account), then add them"
        )
    with transaction.atomic():
        membership, created = Membership.objects.get_or_create(
            tenant_id=acting.tenant_id, user=user, defaults={"role": role}
        )
    if not created:
        raise MemberExists(
            f"{username} is already a member of tenant {acting.tenant_name} ({membership.role}); "
            f"change the role with PATCH /api/v1/members/{username}"
        )
    log.info(
        "member added tenant=%s user_id=%s role=%s by=%s", acting.tenant_name, user.pk, role, _actor(acting)
    )
    return _member_info(Membership.objects.select_related("user").get(pk=membership.pk))


def change_member_role(acting: TenantAccess, username: str, role: str) -> MemberInfo:
    """Change a member's role. Making or unmaking an owner takes an owner; the last owner stays one."""
    _check_role(role)
    with transaction.atomic():
        membership = _membership(acting.tenant_id, username, acting.tenant_name)
        if Role.OWNER in (role, membership.role) and role != membership.role:
            _owner_guard(acting, "grant or take the owner role")
            if membership.role == Role.OWNER and not _other_owners(membership):
                raise LastOwner(
                    f"{username} is the last owner of tenant {acting.tenant_name}; make another member "
                    "owner first"
                )
        Membership.objects.filter(pk=membership.pk).update(role=role)
        membership.role = role
    log.info(
        "member role changed tenant=%s user_id=%s role=%s by=%s",
        acting.tenant_name,
        membership.user_id,
        role,
        _actor(acting),
    )
    return _member_info(membership)


def remove_member(acting: TenantAccess, username: str) -> None:
    """Remove a member. Removing an owner takes an owner; the last owner cannot be removed."""
    with transaction.atomic():
        membership = _membership(acting.tenant_id, username, acting.tenant_name)
        if membership.role == Role.OWNER:
            _owner_guard(acting, "remove an owner")
            if not _other_owners(membership):
                raise LastOwner(
                    f"{username} is the last owner of tenant {acting.tenant_name}; make another member "
                    "owner first"
                )
        membership.delete()
    log.info(
        "member removed tenant=%s user_id=%s by=%s", acting.tenant_name, membership.user_id, _actor(acting)
    )


def _actor(acting: TenantAccess) -> str:
    return f"key:{acting.key_prefix}" if acting.key_prefix else f"user:{acting.user_id}"


# --- keys of one tenant (API) -----------------------------------------------------------------------


@dataclass(frozen=True)
class KeyInfo:
    kind: KeyKind
    prefix: str
    name: str
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None
    scopes: tuple[str, ...] = ()
    expires_at: datetime | None = None

    @property
    def status(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= timezone.now():
            return "expired"
        return "active"


def _key_info(kind: KeyKind, key: KeyBase) -> KeyInfo:
    creator = key.created_by
    return KeyInfo(
        kind=kind,
        prefix=key.prefix,
        name=key.name,
        created_at=key.created_at,
        created_by=creator.get_username() if creator is not None else "",
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
        scopes=tuple(getattr(key, "scopes", None) or ()),
        expires_at=getattr(key, "expires_at", None),
    )


def list_keys(tenant_id: str, kind: KeyKind | None = None, include_revoked: bool = False) -> list[KeyInfo]:
    """The tenant's keys, newest first; never the secrets (only their hashes are stored)."""
    infos: list[KeyInfo] = []
    kinds: tuple[KeyKind, ...] = (kind,) if kind else ("api", "ingest")
    for each in kinds:
        rows = _model_for(each).objects.filter(tenant_id=tenant_id).select_related("created_by")
        if not include_revoked:
            rows = rows.filter(revoked_at__isnull=True)
        infos.extend(_key_info(each, key) for key in rows)
    return sorted(infos, key=lambda info: info.created_at, reverse=True)


def create_key(
    acting: TenantAccess,
    kind: KeyKind,
    name: str = "",
    scopes: Iterable[str] = ("read",),
    expires_at: datetime | None = None,
) -> IssuedKey:
    """A new key for the acting tenant. A key cannot grant more than its creator may do."""
    created_by = get_user_model().objects.filter(pk=acting.user_id).first() if acting.user_id else None
    if kind == "ingest":
        if expires_at is not None:
            raise TenantError("ingest keys do not expire; revoke them instead (leave expires_at out)")
        return issue_ingest_key(acting.tenant_id, name, created_by=created_by)
    cleaned = normalise_scopes(scopes)
    beyond = permissions_of_scopes(cleaned) - acting.permissions
    if beyond:
        raise PermissionRefused(
            f"a key with scopes {', '.join(cleaned)} could do more than you may in tenant "
            f"{acting.tenant_name}; choose narrower scopes"
        )
    if expires_at is not None and expires_at <= timezone.now():
        raise TenantError(
            f"expires_at {_when(expires_at)} is in the past; give a future time or leave it out"
        )
    return issue_api_key(acting.tenant_id, name, cleaned, expires_at=expires_at, created_by=created_by)


def revoke_tenant_key(acting: TenantAccess, prefix_or_id: str) -> RevokedKey:
    """Revoke one of the acting tenant's keys; keys of other tenants are reported as unknown."""
    try:
        _kind, key = _find_key(prefix_or_id)
    except (UnknownKey, AmbiguousKey):
        key = None
    if key is None or str(key.tenant_id) != acting.tenant_id:  # type: ignore[attr-defined]
        raise UnknownKey(
            f"tenant {acting.tenant_name} has no key {prefix_or_id}; GET /api/v1/keys lists its keys"
        )
    return revoke_key(prefix_or_id)


# --- tokens for signed-in users ---------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSubject:
    """Whom a JWT speaks for; ``tenant`` set when the token was issued for one tenant."""

    user_id: int
    username: str
    tenant: TenantRef | None = None


def _tenant_names(user: User) -> list[str]:
    return sorted(
        Membership.objects.filter(user_id=user.pk, tenant__is_active=True).values_list(
            "tenant__name", flat=True
        )
    )


def _subject(user: User, tenant_name: str | None) -> TokenSubject:
    if not tenant_name:
        return TokenSubject(user.pk, user.get_username())
    try:
        access = access_for_user(user, tenant_name)
    except TenantAccessDenied:
        names = _tenant_names(user)
        raise TenantAccessDenied(
            f"you are not a member of an active tenant named {tenant_name!r}; your tenants: "
            f"{', '.join(names) if names else 'none'}"
        ) from None
    return TokenSubject(user.pk, user.get_username(), TenantRef(access.tenant_id, access.tenant_name))


def token_subject_for_login(username: str, password: str, tenant_name: str | None = None) -> TokenSubject:
    """Check a username and password (the configured Django auth backends) for a new token pair."""
    user = authenticate(username=username, password=password)
    if user is None or not user.is_active:
        raise BadCredentials("username or password is wrong, or the account is disabled")
    subject = _subject(user, tenant_name)
    log.info(
        "token issued user_id=%s tenant=%s", user.pk, subject.tenant.tenant_name if subject.tenant else "-"
    )
    return subject


def token_subject_for_refresh(user_id: int | str, tenant_id: str | None) -> TokenSubject:
    """Re-check the account (and its membership, for a tenant-bound token) before refreshing."""
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None or not user.is_active:
        raise BadCredentials("the account of this token no longer exists or is disabled; sign in again")
    if tenant_id is None:
        return TokenSubject(user.pk, user.get_username())
    access = access_for_user(user, bound_tenant_id=tenant_id)
    return TokenSubject(user.pk, user.get_username(), TenantRef(access.tenant_id, access.tenant_name))


# --- first start ------------------------------------------------------------------------------------


def _write_private_json(path: Path, data: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def ensure_default_tenant(var_dir: Path) -> BootstrapResult:
    """First start: tenant ``default``, superuser ``admin``, one ingest and one read API key.

    The credentials are kept in ``var_dir/bootstrap.json`` (mode 0600) so that later starts can show
    where they are without creating anything new.
    """
    path = Path(var_dir) / BOOTSTRAP_FILE
    if path.exists():
        return BootstrapResult(created=False, credentials=json.loads(path.read_text()), path=path)
    if Tenant.objects.filter(name=DEFAULT_TENANT).exists():
        log.warning("bootstrap skipped: tenant %s exists but %s is missing", DEFAULT_TENANT, path)
        return BootstrapResult(created=False, credentials={}, path=None)

    user_model = get_user_model()
    with transaction.atomic():
        created = create_tenant(DEFAULT_TENANT, display_name="Default")
        credentials: dict[str, str] = {"tenant": created.name, "tenant_id": created.tenant_id}
        admin = user_model.objects.filter(username="admin").first()
        if admin is None:
            password = secrets.token_urlsafe(18)
            admin = user_model.objects.create_superuser(username="admin", email="", password=password)
            credentials["admin_username"] = "admin"
            credentials["admin_password"] = password
        set_membership(created.tenant_id, admin, Role.OWNER)
        credentials["ingest_key"] = issue_ingest_key(created.tenant_id, "bootstrap", created_by=admin).raw
        credentials["api_key"] = issue_api_key(
            created.tenant_id, "bootstrap", ("read",), created_by=admin
        ).raw
        _write_private_json(path, credentials)
    log.info("bootstrap done tenant=%s credentials_file=%s", DEFAULT_TENANT, path)
    return BootstrapResult(created=True, credentials=credentials, path=path)
