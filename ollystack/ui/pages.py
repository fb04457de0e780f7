"""What every UI page needs: a signed-in user, the tenant they look at, what their role there allows.

The tenant comes from ``?tenant=<name>`` (links can be shared), else from the session (the tenant switcher),
else the user's first tenant. The page's script gets the same facts as ``window.OLLY`` (``page_config``):
it passes the tenant on every API call, and hides edit controls when ``canWrite`` is false — the API
refuses those actions anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, cast

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tenants.logic import Permission, TenantAccess, access_for_user, user_tenants

SESSION_TENANT = "ui_tenant"


@dataclass(frozen=True)
class UiContext:
    access: TenantAccess
    tenants: list[tuple[str, str]]  # (name, role) of every tenant the user may switch to

    @property
    def can_write(self) -> bool:
        return self.access.allows(Permission.WRITE)


def resolve(request: HttpRequest) -> UiContext | None:
    """The tenant the signed-in user looks at, or None when they belong to none."""
    tenants = user_tenants(cast(User, request.user))
    if not tenants:
        return None
    names = [name for name, _ in tenants]  # superusers: every active tenant
    asked = request.GET.get("tenant") or request.session.get(SESSION_TENANT)
    access = access_for_user(cast(User, request.user), asked if asked in names else names[0])
    if request.session.get(SESSION_TENANT) != access.tenant_name:
        request.session[SESSION_TENANT] = access.tenant_name
    return UiContext(access=access, tenants=tenants)


def ui_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signs the user in, resolves the tenant (``request.ui``), shows a clear page without one."""

    @login_required
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        ui = resolve(request)
        if ui is None:
            return render(request, "ui/no_tenant.html", status=403)
        request.ui = ui  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapped


def render_page(
    request: HttpRequest,
    template: str,
    nav: str,
    title: str,
    context: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
) -> HttpResponse:
    """Render a page of the UI; ``config`` is merged into ``window.OLLY`` for the page's script."""
    ui: UiContext = request.ui  # type: ignore[attr-defined]
    page_config = {
        "tenant": ui.access.tenant_name,
        "role": ui.access.role,
        "canWrite": ui.can_write,
        **(config or {}),
    }
    return render(
        request,
        template,
        {
            "ui": ui,
            "nav": nav,
            "title": title,
            "can_write": ui.can_write,
            "page_config": page_config,
            **(context or {}),
        },
    )
