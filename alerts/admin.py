"""Alert administration. Rules, channels and silences are written through ``alerts.logic`` (the same checks
as the API, shown on the form's fields); states, events and the delivery log are read-only records."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from alerts import logic
from alerts.models import AlertEvent, AlertState, Channel, DeliveryAttempt, Notification, Rule, Silence


def _tenant_id(form: forms.ModelForm) -> str | None:
    tenant = form.cleaned_data.get("tenant") if "tenant" in form.fields else None
    if tenant is not None:
        return str(tenant.pk)
    return str(form.instance.tenant_id) if form.instance.tenant_id else None


def _name_taken(form: forms.ModelForm, model: type[Rule] | type[Channel], tenant_id: str) -> bool:
    """The (tenant, name) constraint, which the form skips once the tenant is read-only."""
    others = model.objects.filter(tenant_id=tenant_id, name=form.cleaned_data.get("name", "").strip())
    if others.exclude(pk=form.instance.pk).exists():
        form.add_error("name", f"a {model._meta.verbose_name} of this tenant already has this name")
        return True
    return False


def _report(form: forms.ModelForm, exc: logic.InvalidSpec) -> None:
    name = {"channel_ids": "channels"}.get(exc.field, exc.field)
    form.add_error(name if name in form.fields else None, exc.message)


class TenantScopedAdmin(admin.ModelAdmin):
    """The tenant is chosen when the object is made and fixed afterwards."""

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fixed = list(super().get_readonly_fields(request, obj))
        return [*fixed, "tenant"] if obj is not None else fixed


# --- rules ------------------------------------------------------------------------------------------


class RuleForm(forms.ModelForm):
    class Meta:
        model = Rule
        fields = [
            "tenant",
            *(name for name in logic.RULE_FIELDS if name != "labels"),
            "labels",
            "channels",
        ]

    def spec(self) -> logic.RuleSpec:
        data = self.cleaned_data
        values = {name: data[name] for name in logic.RULE_FIELDS if name in data}
        values["labels"] = data.get("labels") or {}
        channels = data.get("channels")
        return logic.RuleSpec(**values, channel_ids=tuple(c.pk for c in channels) if channels else ())

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        tenant_id = _tenant_id(self)
        if tenant_id is not None and not self.errors and not _name_taken(self, Rule, tenant_id):
            try:
                logic.check_rule(tenant_id, self.spec())
            except logic.InvalidSpec as exc:
                _report(self, exc)
        return cleaned


@admin.register(Rule)
class RuleAdmin(TenantScopedAdmin):
    form = RuleForm
    list_display = ["name", "tenant", "kind", "source", "severity", "enabled", "updated_at"]
    list_filter = ["tenant", "kind", "source", "severity", "enabled"]
    search_fields = ["name", "service", "expr", "tenant__name"]
    autocomplete_fields = ["tenant"]
    filter_horizontal = ["channels"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    actions = ["enable", "disable"]

    def save_model(self, request: HttpRequest, obj: Rule, form: forms.ModelForm, change: bool) -> None:
        assert isinstance(form, RuleForm)
        tenant_id = str(obj.tenant_id)
        if change:
            saved = logic.update_rule(tenant_id, obj.pk, form.spec())
        else:
            saved = logic.create_rule(tenant_id, form.spec(), created_by=request.user.pk)
        obj.pk = saved.pk
        obj._state.adding = False

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        for formset in formsets:  # the channels were set by the logic with the rule
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request: HttpRequest, obj: Rule) -> None:
        logic.delete_rule(str(obj.tenant_id), obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Rule]) -> None:
        for rule in queryset:
            logic.delete_rule(str(rule.tenant_id), rule.pk)

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet[Rule], enabled: bool) -> None:
        for rule in queryset:
            logic.set_rule_enabled(str(rule.tenant_id), rule.pk, enabled)
        self.message_user(request, f"{len(queryset)} rule(s) {'enabled' if enabled else 'disabled'}")

    @admin.action(description="Enable the selected rules")
    def enable(self, request: HttpRequest, queryset: QuerySet[Rule]) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable the selected rules")
    def disable(self, request: HttpRequest, queryset: QuerySet[Rule]) -> None:
        self._set_enabled(request, queryset, False)


# --- channels ---------------------------------------------------------------------------------------


class ChannelForm(forms.ModelForm):
    url = forms.CharField(
        required=False,
        max_length=1000,
        help_text="Alertmanager base URL, Slack incoming webhook URL, webhook URL; PagerDuty: empty for "
        "https://events.pagerduty.com/v2/enqueue.",
    )
    secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="PagerDuty routing key or webhook signing secret. Never shown; leave empty to keep the "
        "stored one.",
    )

    class Meta:
        model = Channel
        fields = [
            "tenant",
            "name",
            "kind",
            "url",
            "secret",
            "recipients",
            "group_by",
            "group_wait_seconds",
            "repeat_interval_seconds",
            "send_resolved",
            "mute_windows",
            "max_attempts",
            "enabled",
        ]

    def spec(self) -> logic.ChannelSpec:
        data = self.cleaned_data
        names = [n for n in logic.CHANNEL_FIELDS if n in data and n not in ("url", "secret")]
        return logic.ChannelSpec(
            **{name: data[name] for name in names},
            url=data.get("url", ""),
            secret=data.get("secret") or (None if self.instance.pk else ""),
            recipients=logic.parse_recipients(data.get("recipients") or ""),
            group_by=tuple(data.get("group_by") or ()),
            mute_windows=tuple(data.get("mute_windows") or ()),
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        tenant_id = _tenant_id(self)
        if tenant_id is not None and not self.errors and not _name_taken(self, Channel, tenant_id):
            try:
                if not isinstance(cleaned.get("group_by") or [], list):
                    raise logic.InvalidSpec("group_by", 'a list of label names, e.g. ["service.name"]')
                if not isinstance(cleaned.get("mute_windows") or [], list):
                    raise logic.InvalidSpec("mute_windows", "a list of windows")
                logic.check_channel(tenant_id, self.spec(), self.instance if self.instance.pk else None)
            except logic.InvalidSpec as exc:
                _report(self, exc)
        return cleaned


@admin.register(Channel)
class ChannelAdmin(TenantScopedAdmin):
    form = ChannelForm
    list_display = ["name", "tenant", "kind", "enabled", "send_resolved", "created_at"]
    list_filter = ["tenant", "kind", "enabled"]
    search_fields = ["name", "tenant__name"]
    autocomplete_fields = ["tenant"]
    actions = ["enable", "disable"]

    def save_model(self, request: HttpRequest, obj: Channel, form: forms.ModelForm, change: bool) -> None:
        assert isinstance(form, ChannelForm)
        tenant_id = str(obj.tenant_id)
        saved = (
            logic.update_channel(tenant_id, obj.pk, form.spec())
            if change
            else logic.create_channel(tenant_id, form.spec())
        )
        obj.pk = saved.pk
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: Channel) -> None:
        logic.delete_channel(str(obj.tenant_id), obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        for channel in queryset:
            logic.delete_channel(str(channel.tenant_id), channel.pk)

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet[Channel], enabled: bool) -> None:
        for channel in queryset:
            logic.set_channel_enabled(str(channel.tenant_id), channel.pk, enabled)
        self.message_user(request, f"{len(queryset)} channel(s) {'enabled' if enabled else 'disabled'}")

    @admin.action(description="Enable the selected channels")
    def enable(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable the selected channels")
    def disable(self, request: HttpRequest, queryset: QuerySet[Channel]) -> None:
        self._set_enabled(request, queryset, False)


# --- silences ---------------------------------------------------------------------------------------


class SilenceForm(forms.ModelForm):
    class Meta:
        model = Silence
        fields = ["tenant", "matchers", "starts_at", "ends_at", "comment"]

    def spec(self) -> logic.SilenceSpec:
        data = self.cleaned_data
        return logic.SilenceSpec(
            matchers=logic.matchers_from_json(data.get("matchers")),
            starts_at=data.get("starts_at"),
            ends_at=data["ends_at"],
            comment=data.get("comment", ""),
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors:
            try:
                logic.check_silence(self.spec())
            except logic.InvalidSpec as exc:
                _report(self, exc)
        return cleaned


@admin.register(Silence)
class SilenceAdmin(TenantScopedAdmin):
    form = SilenceForm
    list_display = ["__str__", "tenant", "status", "starts_at", "ends_at", "comment"]
    list_filter = ["tenant"]
    search_fields = ["comment", "tenant__name"]
    autocomplete_fields = ["tenant"]
    readonly_fields = ["created_by", "created_at"]
    actions = ["expire"]

    @admin.display(description="status")
    def status(self, obj: Silence) -> str:
        return logic.silence_status(obj)

    def save_model(self, request: HttpRequest, obj: Silence, form: forms.ModelForm, change: bool) -> None:
        assert isinstance(form, SilenceForm)
        tenant_id = str(obj.tenant_id)
        saved = (
            logic.update_silence(tenant_id, obj.pk, form.spec())
            if change
            else logic.create_silence(tenant_id, form.spec(), created_by=request.user.pk)
        )
        obj.pk = saved.pk
        obj._state.adding = False

    @admin.action(description="Expire the selected silences now")
    def expire(self, request: HttpRequest, queryset: QuerySet[Silence]) -> None:
        for silence in queryset:
            logic.expire_silence(str(silence.tenant_id), silence.pk)
        self.message_user(request, f"{len(queryset)} silence(s) expired", messages.SUCCESS)


# --- records (read-only) ----------------------------------------------------------------------------


class ReadOnlyAdmin(admin.ModelAdmin):
    """Written by the evaluator and the dispatcher only; shown here to look into what happened."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AlertState)
class AlertStateAdmin(ReadOnlyAdmin):
    list_display = [
        "rule",
        "series",
        "tenant",
        "state",
        "value",
        "firing_since",
        "evaluated_at",
        "changed_at",
    ]
    list_filter = ["tenant", "state"]
    search_fields = ["rule__name", "series"]
    list_select_related = ["rule", "tenant"]


@admin.register(AlertEvent)
class AlertEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "rule", "series", "tenant", "from_state", "to_state", "value", "threshold"]
    list_filter = ["tenant", "to_state"]
    search_fields = ["rule__name", "series"]
    date_hierarchy = "at"
    list_select_related = ["rule", "tenant"]


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ["at", "ok", "status_code", "error", "duration_ms"]
    readonly_fields = ["at", "ok", "status_code", "error", "duration_ms"]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "channel", "rule", "tenant", "firing", "status", "attempts", "last_error"]
    list_filter = ["tenant", "status", "firing"]
    search_fields = ["channel__name", "rule__name", "dedup_key", "group_key"]
    date_hierarchy = "created_at"
    list_select_related = ["channel", "rule", "tenant"]
    inlines = [DeliveryAttemptInline]
