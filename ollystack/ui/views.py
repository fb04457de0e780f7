"""Pages that belong to no feature: the entry redirect and the tenant switcher."""

from __future__ import annotations

from typing import cast

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from ollystack.ui.pages import SESSION_TENANT
from tenants.logic import TenantError, access_for_user


def index(request: HttpRequest) -> HttpResponse:
    return redirect("ui-services" if request.user.is_authenticated else "account_login")


@require_POST
@login_required
def switch_tenant(request: HttpRequest) -> HttpResponse:
    """Remember the chosen tenant in the session and go back to the page, without its ?tenant=."""
    name = request.POST.get("tenant", "")
    try:
        access = access_for_user(cast(User, request.user), name)
    except TenantError as exc:
        return HttpResponseBadRequest(str(exc))
    request.session[SESSION_TENANT] = access.tenant_name
    back = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = "/"
    return redirect(back.split("?", 1)[0])
