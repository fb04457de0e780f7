"""Tenant administration. Writes go through ``tenants.logic``; a new key is shown once, then only its hash
is kept and the key becomes read-only (revoke it, never edit it)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from tenants import logic
from tenants.models import ApiKey, ApiScope, IngestKey, Membership, Tenant

SHOWN_ONCE = "Copy the new {kind} key now, it will not be shown again: {raw}"
POLICY_FIELDS = tuple(logic.POLICY_FIELDS)
RETENTION_FIELDS = tuple(name for name in POLICY_FIELDS if name.startswith("retention_days_"))
QUOTA_FIELDS = tuple(name for name in POLICY_FIELDS if name not in RETENTION_FIELDS)


class TenantForm(forms.ModelForm):
    class Meta:
        model = Tenant
        fields = ["name", "display_name", "is_active", *POLICY_FIELDS]


def _amount(used: int, cap: int | None, unit: str) -> str:
    if cap is None:
        return f"{used:,} {unit} (no cap)"
    share = f"{100 * used / cap:.1f} %" if cap else "cap is 0"
    return f"{used:,} of {cap:,} {unit} ({share})"


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    form = TenantForm
    list_display = ["name", "display_name", "is_active", "created_at", "id"]
    list_filter = ["is_active"]
    search_fields = ["name", "display_name", "id"]
    readonly_fields = ["id", "created_at", "usage_today"]
    fieldsets = [
        (None, {"fields": ["name", "display_name", "is_active", "id", "created_at"]}),
        (
            "Quotas and sampling",
            {
                "fields": QUOTA_FIELDS,
                "description": "Enforced by every ingest server per request; changes apply within "
                "OLLYSTACK_KEY_REFRESH_SECONDS. Empty quota fields mean unlimited.",
            },
        ),
        (
            "Retention",
            {
                "fields": RETENTION_FIELDS,
                "description": "Each stored row carries the retention in force when it was ingested; "
                "ClickHouse deletes it that many days after its timestamp. A change applies to data "
                "ingested from then on.",
            },
        ),
        ("Usage today", {"fields": ["usage_today"]}),
    ]

    def get_fieldsets(self, request: HttpRequest, obj: Tenant | None = None) -> Any:
        if obj is None:  # nothing used yet; id and dates are assigned on save
            return [
                (None, {"fields": ["name", "display_name", "is_active"]}),
                self.fieldsets[1],
                self.fieldsets[2],
            ]
        return self.fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Tenant | None = None) -> list[str]:
        # The name is part of URLs and bootstrap files; it is chosen once.
        return [*self.readonly_fields, "name"] if obj is not None else list(self.readonly_fields)

    @admin.display(description="usage today")
    def usage_today(self, obj: Tenant) -> SafeString | str:
        from ingest import quotas

        report = quotas.tenant_usage(str(obj.pk))
        policy = report.policy
        if report.usage is None:
            return f"Usage cannot be read right now: {report.usage_error}"
        usage = report.usage
        rate = (
            f"{policy.rate_limit_per_second:,} records/s, burst {policy.effective_burst:,}"
            if policy.rate_limit_per_second is not None
            else "none"
        )
        rows = [
            ("Records", _amount(usage.records, policy.daily_records_cap, "records")),
            ("Bytes (uncompressed)", _amount(usage.bytes, policy.daily_bytes_cap, "bytes")),
            ("Rate limit", rate),
            ("Day", f"{usage.day.isoformat()} UTC, resets at {usage.resets_at:%Y-%m-%d %H:%M} UTC"),
            ("Counted by", f"the {report.store} quota store"),
        ]
        return format_html(
            '<table class="ollystack-usage">{}</table>',
            format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
        )

    def save_model(self, request: HttpRequest, obj: Tenant, form: forms.ModelForm, change: bool) -> None:
        policy = logic.TenantPolicy(
            **{attr: form.cleaned_data[name] for name, attr in logic.POLICY_FIELDS.items()}
        )
        if change:
            logic.update_tenant(obj, display_name=obj.display_name, is_active=obj.is_active)
            logic.set_tenant_policy(obj, policy)
            return
        created = logic.create_tenant(obj.name, obj.display_name)
        if not obj.is_active:
            logic.update_tenant(created.tenant_id, is_active=False)
        logic.set_tenant_policy(created.tenant_id, policy)
        obj.pk = created.tenant_id
        obj.refresh_from_db()
        obj._state.adding = False


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["tenant", "user", "role", "created_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["tenant__name", "user__username", "user__email"]
    autocomplete_fields = ["tenant"]
    raw_id_fields = ["user"]

    def save_model(self, request: HttpRequest, obj: Membership, form: forms.ModelForm, change: bool) -> None:
        logic.set_membership(obj.tenant, obj.user, obj.role)
        saved = Membership.objects.get(tenant=obj.tenant, user=obj.user)
        obj.pk = saved.pk
        obj._state.adding = False


class KeyAdmin(admin.ModelAdmin):
    kind: logic.KeyKind = "api"
    list_display = ["prefix_display", "name", "tenant", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["tenant", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "tenant__name"]
    autocomplete_fields = ["tenant"]
    actions = ["revoke"]
    add_fields: list[str] = ["tenant", "name"]

    @admin.display(description="key", ordering="prefix")
    def prefix_display(self, obj: IngestKey | ApiKey) -> str:
        return f"{obj.prefix}…"

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return list(self.add_fields)
        return [
            "prefix_display",
            *self.add_fields,
            "key_hash",
            "created_at",
            "created_by",
            "last_used_at",
            "revoked_at",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if obj is None else self.get_fields(request, obj)

    def issue(self, request: HttpRequest, obj: Any, form: forms.ModelForm) -> logic.IssuedKey:
        raise NotImplementedError

    def save_model(self, request: HttpRequest, obj: Any, form: forms.ModelForm, change: bool) -> None:
        if change:
            return  # keys are immutable; revocation is an action
        issued = self.issue(request, obj, form)
        obj.pk = issued.key_id
        obj.refresh_from_db()
        obj._state.adding = False
        label = "ingest" if self.kind == "ingest" else "API"
        messages.warning(request, SHOWN_ONCE.format(kind=label, raw=issued.raw))

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        revoked, skipped = 0, 0
        for key in queryset:
            try:
                logic.revoke_key(f"{self.kind}:{key.pk}")
                revoked += 1
            except logic.KeyAlreadyRevoked:
                skipped += 1
        if revoked:
            messages.success(request, f"Revoked {revoked} key(s).")
        if skipped:
            messages.info(request, f"{skipped} key(s) were already revoked.")


@admin.register(IngestKey)
class IngestKeyAdmin(KeyAdmin):
    kind = "ingest"

    def issue(self, request: HttpRequest, obj: IngestKey, form: forms.ModelForm) -> logic.IssuedKey:
        return logic.issue_ingest_key(obj.tenant, obj.name, created_by=_user(request))


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiScope.choices,
        initial=[ApiScope.READ],
        widget=forms.CheckboxSelectMultiple,
        help_text="admin includes every scope.",
    )

    class Meta:
        model = ApiKey
        fields = ["tenant", "name", "scopes", "expires_at"]


@admin.register(ApiKey)
class ApiKeyAdmin(KeyAdmin):
    kind = "api"
    add_fields = ["tenant", "name", "scopes", "expires_at"]
    list_display = [*KeyAdmin.list_display[:3], "scopes", "expires_at", *KeyAdmin.list_display[3:]]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ApiKeyForm
        return super().get_form(request, obj, change=change, **kwargs)

    def issue(self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm) -> logic.IssuedKey:
        return logic.issue_api_key(
            obj.tenant,
            obj.name,
            form.cleaned_data["scopes"],
            expires_at=obj.expires_at,
            created_by=_user(request),
        )


def _user(request: HttpRequest) -> Any:
    return request.user if request.user.is_authenticated else None
