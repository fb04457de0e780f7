"""Dashboard administration, written through ``ollystack.telemetry.dashboards`` (the same checks as the API,
shown on the form's fields; a save from the admin also tells the dashboard's open pages)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from ollystack.telemetry import dashboards as logic
from ollystack.telemetry.models import Dashboard


class DashboardForm(forms.ModelForm):
    class Meta:
        model = Dashboard
        fields = ["tenant", "name", "description", "panels", "version"]

    def spec(self) -> logic.DashboardSpec:
        data = self.cleaned_data
        return logic.DashboardSpec(
            name=data.get("name", ""),
            description=data.get("description", ""),
            panels=logic.panels_from_json(data.get("panels") or []),
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if not self.errors:
            try:
                logic.check_dashboard(self.spec())
            except logic.InvalidDashboard as exc:
                self.add_error(exc.field if exc.field in self.fields else None, exc.message)
            if self.instance.pk:
                stored = (
                    Dashboard.objects.filter(pk=self.instance.pk).values_list("version", flat=True).first()
                )
                if stored is not None and cleaned.get("version") != stored:
                    self.add_error(
                        "version",
                        f"saved by someone else in the meantime (now version {stored}); reload the page",
                    )
        return cleaned


@admin.register(Dashboard)
class DashboardAdmin(admin.ModelAdmin):
    form = DashboardForm
    list_display = ["name", "tenant", "version", "created_by", "updated_at"]
    list_filter = ["tenant"]
    search_fields = ["name", "description", "tenant__name"]
    autocomplete_fields = ["tenant"]
    readonly_fields = ["created_by", "created_at", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fixed = list(super().get_readonly_fields(request, obj))
        return [*fixed, "tenant"] if obj is not None else [*fixed, "version"]

    def save_model(self, request: HttpRequest, obj: Dashboard, form: forms.ModelForm, change: bool) -> None:
        assert isinstance(form, DashboardForm)
        tenant_id = str(obj.tenant_id)
        if change:
            saved = logic.update_dashboard(tenant_id, obj.pk, form.spec(), form.cleaned_data["version"])
        else:
            saved = logic.create_dashboard(tenant_id, form.spec(), created_by=request.user.pk)
        obj.pk = saved.id
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: Dashboard) -> None:
        logic.delete_dashboard(str(obj.tenant_id), obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Dashboard]) -> None:
        for dashboard in queryset:
            logic.delete_dashboard(str(dashboard.tenant_id), dashboard.pk)
