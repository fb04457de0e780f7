"""The alert pages: what fires now (live over ``ws/alerts/``), the rules, their history, and the rule editor.

The scripts read and change everything through ``/api/v1/alerts/``; the views only check that a rule exists
in the tenant (a clear 404 instead of an empty form) and name it in the title. Viewers get the editor
read-only: its inputs are disabled and the API refuses their writes anyway.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse

from alerts import logic
from alerts.models import Comparator, RedFigure, RuleKind, RuleSource, Severity
from ollystack.ui.pages import UiContext, render_page, ui_page


def choices() -> dict[str, list[list[str]]]:
    """The values the rule API accepts for its choice fields, with their labels (the editor's selects)."""
    return {
        "kind": [[c.value, c.label] for c in RuleKind],
        "source": [[c.value, c.label] for c in RuleSource],
        "red_figure": [[c.value, c.label] for c in RedFigure],
        "comparator": [[c.value, c.label] for c in Comparator],
        "severity": [[c.value, c.label] for c in Severity],
    }


@ui_page
def index(request: HttpRequest) -> HttpResponse:
    return render_page(request, "ui/alerts.html", "alerts", "Alerts")


@ui_page
def rule_editor(request: HttpRequest, rule_id: int | None = None) -> HttpResponse:
    ui: UiContext = request.ui  # type: ignore[attr-defined]
    title = "New alert rule"
    if rule_id is not None:
        try:
            rule = logic.get_rule(ui.access.tenant_id, rule_id)
        except logic.NotFound:
            raise Http404(f"no alert rule {rule_id} in tenant {ui.access.tenant_name}") from None
        title = f"Alert rule: {rule.name}"
    return render_page(
        request,
        "ui/alert_rule.html",
        "alerts",
        title,
        context={"rule_id": rule_id, "choices": choices()},
        config={"ruleId": rule_id},
    )
