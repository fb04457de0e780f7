"""Authorization as a matrix: every endpoint by every kind of caller, with the expected status per cell.

The endpoints come from the URL resolver (everything under /api/v1/, /graphql/ and /prometheus/api/v1/),
so an endpoint added later cannot escape: it fails here until it has a row in ``TABLE`` and a request in
``REQUESTS``. Users are checked twice, signed in with a session and with a JWT; API keys by scope.

Columns: members of tenant acme by role, an outsider (owner of another tenant), no credentials at all, and
API keys of acme with one scope each plus an admin key of the other tenant. Every request names
``?tenant=acme``. A cell is the status expected; 2xx/4xx other than 401/403 mean authorization passed and
the endpoint answered (e.g. 404 for a trace that does not exist).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework.views import APIView

from alerts import logic as alert_logic
from ollystack.telemetry import dashboards as dashboard_logic
from tenants import auth, logic
from tenants.models import Tenant
from tenants.permissions import TenantPermission, required_permission
from tests.alerts.recorder import refused_url

pytestmark = pytest.mark.django_db

API_PREFIXES = ("api/v1/", "graphql/", "prometheus/api/v1/")
PASSWORD = "matrix-password-1"
USERS = ("owner", "admin", "editor", "viewer", "outsider", "anonymous")
KEYS = ("key:read", "key:write", "key:admin", "key:other")
COLUMNS = USERS + KEYS

# METHOD /route [variant]: owner admin editor viewer outsider anonymous | keys: read write admin other
TABLE: dict[str, str] = {
    # telemetry reads (other views derive from ReadView)
    "GET /api/v1/services":                                  "200 200 200 200 403 401 | 200 403 200 403",
    "GET /api/v1/logs":                                      "200 200 200 200 403 401 | 200 403 200 403",
    "GET /api/v1/traces/<str:trace_id>":                     "404 404 404 404 403 401 | 404 403 404 403",
    "GET /api/v1/metrics":                                   "200 200 200 200 403 401 | 200 403 200 403",
    "GET /api/v1/metrics/names":                             "200 200 200 200 403 401 | 200 403 200 403",
    "GET /api/v1/metrics/labels":                            "200 200 200 200 403 401 | 200 403 200 403",
    "GET /api/v1/metrics/labels/<str:label>/values":         "200 200 200 200 403 401 | 200 403 200 403",
    "GET /api/v1/traces":                                    "200 200 200 200 403 401 | 200 403 200 403",
    "GET /api/v1/services/<str:service>/operations":         "200 200 200 200 403 401 | 200 403 200 403",
    "GET /api/v1/services/names":                            "200 200 200 200 403 401 | 200 403 200 403",
    "GET /api/v1/errors":                                    "200 200 200 200 403 401 | 200 403 200 403",
    "GET /api/v1/topology":                                  "200 200 200 200 403 401 | 200 403 200 403",
    "POST /api/v1/sql":                                      "200 200 200 200 403 401 | 200 403 200 403",
    "GET /api/v1/services/series":                           "200 200 200 200 403 401 | 200 403 200 403",
    "GET /api/v1/services/<str:service>/series":             "200 200 200 200 403 401 | 200 403 200 403",
    "GET /api/v1/services/<str:service>/slowest":            "200 200 200 200 403 401 | 200 403 200 403",
    "GET /api/v1/logs/histogram":                            "200 200 200 200 403 401 | 200 403 200 403",
    "GET /api/v1/traces/<str:trace_id>/waterfall":           "404 404 404 404 403 401 | 404 403 404 403",
    "GET /api/v1/traces/<str:trace_id>/spans/<str:span_id>": "404 404 404 404 403 401 | 404 403 404 403",
    "GET /api/v1/usage":                                     "200 200 200 200 403 401 | 200 403 200 403",
    "GET /graphql/":                                         "200 200 200 200 403 401 | 200 403 200 403",
    "POST /graphql/":                                        "200 200 200 200 403 401 | 200 403 200 403",
    # Prometheus HTTP API (Grafana): reads
    "GET /prometheus/api/v1/query":                          "200 200 200 200 403 401 | 200 403 200 403",
    "POST /prometheus/api/v1/query":                         "200 200 200 200 403 401 | 200 403 200 403",
    "GET /prometheus/api/v1/query_range":                    "200 200 200 200 403 401 | 200 403 200 403",
    "POST /prometheus/api/v1/query_range":                   "200 200 200 200 403 401 | 200 403 200 403",
    "GET /prometheus/api/v1/series":                         "200 200 200 200 403 401 | 200 403 200 403",
    "POST /prometheus/api/v1/series":                        "200 200 200 200 403 401 | 200 403 200 403",
    "GET /prometheus/api/v1/labels":                         "200 200 200 200 403 401 | 200 403 200 403",
    "POST /prometheus/api/v1/labels":                        "200 200 200 200 403 401 | 200 403 200 403",
    "GET /prometheus/api/v1/label/<str:name>/values":        "200 200 200 200 403 401 | 200 403 200 403",
    "GET /prometheus/api/v1/metadata":                       "200 200 200 200 403 401 | 200 403 200 403",
    "GET /prometheus/api/v1/status/buildinfo":               "200 200 200 200 403 401 | 200 403 200 403",
    "GET /prometheus/api/v1/query_exemplars":                "200 200 200 200 403 401 | 200 403 200 403",
    "POST /prometheus/api/v1/query_exemplars":               "200 200 200 200 403 401 | 200 403 200 403",
    # members: everyone reads, admins manage, only owners touch owners
    "GET /api/v1/members":                                   "200 200 200 200 403 401 | 200 403 200 403",
    "POST /api/v1/members":                                  "201 201 403 403 403 401 | 403 403 201 403",
    "POST /api/v1/members [as owner]":                       "201 403 403 403 403 401 | 403 403 403 403",
    "PATCH /api/v1/members/<str:username>":                  "200 200 403 403 403 401 | 403 403 200 403",
    "PATCH /api/v1/members/<str:username> [make owner]":     "200 403 403 403 403 401 | 403 403 403 403",
    "PATCH /api/v1/members/<str:username> [an owner]":       "200 403 403 403 403 401 | 403 403 403 403",
    "DELETE /api/v1/members/<str:username>":                 "204 204 403 403 403 401 | 403 403 204 403",
    "DELETE /api/v1/members/<str:username> [an owner]":      "204 403 403 403 403 401 | 403 403 403 403",
    # keys: admins and owners
    "GET /api/v1/keys":                                      "200 200 403 403 403 401 | 403 403 200 403",
    "POST /api/v1/keys":                                     "201 201 403 403 403 401 | 403 403 201 403",
    "POST /api/v1/keys [ingest]":                            "201 201 403 403 403 401 | 403 403 201 403",
    "POST /api/v1/keys/<str:key_id>/revoke":                 "200 200 403 403 403 401 | 403 403 200 403",
    # signing in is public: credentials in the body, the Authorization header is not looked at
    "POST /api/v1/auth/token":                               "200 200 200 200 200 200 | 200 200 200 200",
    "POST /api/v1/auth/token/refresh":                       "200 200 200 200 200 200 | 200 200 200 200",
    # alerts: members read, editors and up (and write keys) change rules, channels and silences
    "GET /api/v1/alerts/rules":                              "200 200 200 200 403 401 | 200 403 200 403",
    "POST /api/v1/alerts/rules":                             "201 201 201 403 403 401 | 403 201 201 403",
    "GET /api/v1/alerts/rules/<int:rule_id>":                "200 200 200 200 403 401 | 200 403 200 403",
    "PUT /api/v1/alerts/rules/<int:rule_id>":                "200 200 200 403 403 401 | 403 200 200 403",
    "PATCH /api/v1/alerts/rules/<int:rule_id>":              "200 200 200 403 403 401 | 403 200 200 403",
    "DELETE /api/v1/alerts/rules/<int:rule_id>":             "204 204 204 403 403 401 | 403 204 204 403",
    "GET /api/v1/alerts/channels":                           "200 200 200 200 403 401 | 200 403 200 403",
    "POST /api/v1/alerts/channels":                          "201 201 201 403 403 401 | 403 201 201 403",
    "GET /api/v1/alerts/channels/<int:channel_id>":          "200 200 200 200 403 401 | 200 403 200 403",
    "PUT /api/v1/alerts/channels/<int:channel_id>":          "200 200 200 403 403 401 | 403 200 200 403",
    "PATCH /api/v1/alerts/channels/<int:channel_id>":        "200 200 200 403 403 401 | 403 200 200 403",
    "DELETE /api/v1/alerts/channels/<int:channel_id>":       "204 204 204 403 403 401 | 403 204 204 403",
    "POST /api/v1/alerts/channels/<int:channel_id>/test":    "200 200 200 403 403 401 | 403 200 200 403",
    "GET /api/v1/alerts/silences":                           "200 200 200 200 403 401 | 200 403 200 403",
    "POST /api/v1/alerts/silences":                          "201 201 201 403 403 401 | 403 201 201 403",
    "GET /api/v1/alerts/silences/<int:silence_id>":          "200 200 200 200 403 401 | 200 403 200 403",
    "PUT /api/v1/alerts/silences/<int:silence_id>":          "200 200 200 403 403 401 | 403 200 200 403",
    "DELETE /api/v1/alerts/silences/<int:silence_id>":       "200 200 200 403 403 401 | 403 200 200 403",
    "GET /api/v1/alerts/states":                             "200 200 200 200 403 401 | 200 403 200 403",
    "GET /api/v1/alerts/events":                             "200 200 200 200 403 401 | 200 403 200 403",
    "GET /api/v1/alerts/notifications":                      "200 200 200 200 403 401 | 200 403 200 403",
    # dashboards: members read, editors and up (and write keys) change them
    "GET /api/v1/dashboards":                                "200 200 200 200 403 401 | 200 403 200 403",
    "POST /api/v1/dashboards":                               "201 201 201 403 403 401 | 403 201 201 403",
    "GET /api/v1/dashboards/<int:dashboard_id>":             "200 200 200 200 403 401 | 200 403 200 403",
    "PUT /api/v1/dashboards/<int:dashboard_id>":             "200 200 200 403 403 401 | 403 200 200 403",
    "DELETE /api/v1/dashboards/<int:dashboard_id>":          "204 204 204 403 403 401 | 403 204 204 403",
}  # fmt: skip


@dataclass
class World:
    """Tenant acme with one member per role, an outsider from tenant beta, and keys."""

    users: dict[str, Any]
    keys: dict[str, str]
    counter: Iterator[int] = field(default_factory=itertools.count)

    def new_user(self, role: str | None = None) -> str:
        username = f"u{next(self.counter)}"
        user = get_user_model().objects.create_user(username, password=PASSWORD)
        if role is not None:
            logic.set_membership("acme", user, role)
        return username

    def new_key(self) -> str:
        return logic.issue_api_key("acme", "to revoke").prefix

    def refresh_token(self) -> str:
        user = self.users["viewer"]
        return auth.issue_tokens(logic.TokenSubject(user.pk, user.username)).refresh


@dataclass(frozen=True)
class Call:
    path: str
    body: dict[str, Any] | None = None
    query: dict[str, str] = field(default_factory=dict)


PROM_RANGE = {"query": "up", "start": "1700000000", "end": "1700003600", "step": "60"}


# Alert objects of tenant acme, made through the alert logic: one fresh object per cell.
RED_RULE: dict[str, Any] = {"service": "checkout", "red_figure": "error_rate", "threshold": 0.05}


def _acme_id() -> str:
    return str(Tenant.objects.get(name="acme").pk)


def _rule(w: World) -> int:
    return alert_logic.create_rule(
        _acme_id(), alert_logic.RuleSpec(name=f"r{next(w.counter)}", **RED_RULE)
    ).pk


def _channel(w: World, url: str = "https://example.com/hook") -> int:
    spec = alert_logic.ChannelSpec(name=f"c{next(w.counter)}", kind="webhook", url=url)
    return alert_logic.create_channel(_acme_id(), spec).pk


DASHBOARD: dict[str, Any] = {
    "name": "checkout",
    "panels": [{"title": "spans", "type": "stat", "language": "sql", "query": "SELECT count() FROM spans"}],
}


def _dashboard(w: World) -> int:
    spec = dashboard_logic.DashboardSpec(name=f"d{next(w.counter)}")
    return dashboard_logic.create_dashboard(_acme_id(), spec).id


def _silence_body() -> dict[str, Any]:
    ends = (timezone.now() + timedelta(hours=1)).isoformat()
    return {"matchers": [{"name": "service", "value": "checkout"}], "ends_at": ends}


def _silence(w: World) -> int:
    body = _silence_body()
    spec = alert_logic.SilenceSpec(
        matchers=alert_logic.matchers_from_json(body["matchers"]), ends_at=timezone.now() + timedelta(hours=1)
    )
    return alert_logic.create_silence(_acme_id(), spec).pk


# How to call each row: a fresh target per cell, so that a write in one cell does not change the next.
REQUESTS: dict[str, Callable[[World], Call]] = {
    "GET /api/v1/services": lambda w: Call("/api/v1/services"),
    "GET /api/v1/services/names": lambda w: Call("/api/v1/services/names"),
    "GET /api/v1/logs": lambda w: Call("/api/v1/logs"),
    "GET /api/v1/traces/<str:trace_id>": lambda w: Call("/api/v1/traces/" + "ab" * 16),
    "GET /api/v1/metrics": lambda w: Call("/api/v1/metrics"),
    "GET /api/v1/metrics/names": lambda w: Call("/api/v1/metrics/names"),
    "GET /api/v1/metrics/labels": lambda w: Call("/api/v1/metrics/labels"),
    "GET /api/v1/metrics/labels/<str:label>/values": lambda w: Call(
        "/api/v1/metrics/labels/service.name/values"
    ),
    "GET /api/v1/traces": lambda w: Call("/api/v1/traces"),
    "GET /api/v1/services/<str:service>/operations": lambda w: Call("/api/v1/services/checkout/operations"),
    "GET /api/v1/errors": lambda w: Call("/api/v1/errors"),
    "GET /api/v1/topology": lambda w: Call("/api/v1/topology"),
    "POST /api/v1/sql": lambda w: Call("/api/v1/sql", {"query": "SELECT 1 AS one"}),
    "GET /api/v1/usage": lambda w: Call("/api/v1/usage"),
    "GET /graphql/": lambda w: Call("/graphql/", query={"query": "{ services { service } }"}),
    "POST /graphql/": lambda w: Call("/graphql/", {"query": "{ services { service } }"}),
    "GET /prometheus/api/v1/query": lambda w: Call("/prometheus/api/v1/query", query={"query": "up"}),
    "POST /prometheus/api/v1/query": lambda w: Call("/prometheus/api/v1/query", query={"query": "up"}),
    "GET /prometheus/api/v1/query_range": lambda w: Call("/prometheus/api/v1/query_range", query=PROM_RANGE),
    "POST /prometheus/api/v1/query_range": lambda w: Call("/prometheus/api/v1/query_range", query=PROM_RANGE),
    "GET /prometheus/api/v1/series": lambda w: Call("/prometheus/api/v1/series", query={"match[]": "up"}),
    "POST /prometheus/api/v1/series": lambda w: Call("/prometheus/api/v1/series", query={"match[]": "up"}),
    "GET /prometheus/api/v1/labels": lambda w: Call("/prometheus/api/v1/labels"),
    "POST /prometheus/api/v1/labels": lambda w: Call("/prometheus/api/v1/labels"),
    "GET /prometheus/api/v1/label/<str:name>/values": lambda w: Call("/prometheus/api/v1/label/job/values"),
    "GET /prometheus/api/v1/metadata": lambda w: Call("/prometheus/api/v1/metadata"),
    "GET /prometheus/api/v1/status/buildinfo": lambda w: Call("/prometheus/api/v1/status/buildinfo"),
    "GET /prometheus/api/v1/query_exemplars": lambda w: Call(
        "/prometheus/api/v1/query_exemplars", query=PROM_RANGE
    ),
    "POST /prometheus/api/v1/query_exemplars": lambda w: Call(
        "/prometheus/api/v1/query_exemplars", query=PROM_RANGE
    ),
    "GET /api/v1/members": lambda w: Call("/api/v1/members"),
    "POST /api/v1/members": lambda w: Call("/api/v1/members", {"username": w.new_user(), "role": "editor"}),
    "POST /api/v1/members [as owner]": lambda w: Call(
        "/api/v1/members", {"username": w.new_user(), "role": "owner"}
    ),
    "PATCH /api/v1/members/<str:username>": lambda w: Call(
        f"/api/v1/members/{w.new_user('editor')}", {"role": "viewer"}
    ),
    "PATCH /api/v1/members/<str:username> [make owner]": lambda w: Call(
        f"/api/v1/members/{w.new_user('admin')}", {"role": "owner"}
    ),
    "PATCH /api/v1/members/<str:username> [an owner]": lambda w: Call(
        f"/api/v1/members/{w.new_user('owner')}", {"role": "admin"}
    ),
    "DELETE /api/v1/members/<str:username>": lambda w: Call(f"/api/v1/members/{w.new_user('viewer')}"),
    "DELETE /api/v1/members/<str:username> [an owner]": lambda w: Call(
        f"/api/v1/members/{w.new_user('owner')}"
    ),
    "GET /api/v1/keys": lambda w: Call("/api/v1/keys"),
    "POST /api/v1/keys": lambda w: Call("/api/v1/keys", {"kind": "api", "name": "m", "scopes": ["read"]}),
    "POST /api/v1/keys [ingest]": lambda w: Call("/api/v1/keys", {"kind": "ingest", "name": "m"}),
    "POST /api/v1/keys/<str:key_id>/revoke": lambda w: Call(f"/api/v1/keys/{w.new_key()}/revoke"),
    "POST /api/v1/auth/token": lambda w: Call(
        "/api/v1/auth/token", {"username": w.users["viewer"].username, "password": PASSWORD}
    ),
    "POST /api/v1/auth/token/refresh": lambda w: Call(
        "/api/v1/auth/token/refresh", {"refresh": w.refresh_token()}
    ),
    "GET /api/v1/alerts/rules": lambda w: Call("/api/v1/alerts/rules"),
    "POST /api/v1/alerts/rules": lambda w: Call(
        "/api/v1/alerts/rules", {"name": f"n{next(w.counter)}", **RED_RULE}
    ),
    "GET /api/v1/alerts/rules/<int:rule_id>": lambda w: Call(f"/api/v1/alerts/rules/{_rule(w)}"),
    "PUT /api/v1/alerts/rules/<int:rule_id>": lambda w: Call(
        f"/api/v1/alerts/rules/{_rule(w)}", {"name": f"n{next(w.counter)}", **RED_RULE}
    ),
    "PATCH /api/v1/alerts/rules/<int:rule_id>": lambda w: Call(
        f"/api/v1/alerts/rules/{_rule(w)}", {"enabled": False}
    ),
    "DELETE /api/v1/alerts/rules/<int:rule_id>": lambda w: Call(f"/api/v1/alerts/rules/{_rule(w)}"),
    "GET /api/v1/alerts/channels": lambda w: Call("/api/v1/alerts/channels"),
    "POST /api/v1/alerts/channels": lambda w: Call(
        "/api/v1/alerts/channels", {"name": f"n{next(w.counter)}", "kind": "webhook", "url": "https://e.x/h"}
    ),
    "GET /api/v1/alerts/channels/<int:channel_id>": lambda w: Call(f"/api/v1/alerts/channels/{_channel(w)}"),
    "PUT /api/v1/alerts/channels/<int:channel_id>": lambda w: Call(
        f"/api/v1/alerts/channels/{_channel(w)}", {"name": f"n{next(w.counter)}", "kind": "webhook"}
    ),
    "PATCH /api/v1/alerts/channels/<int:channel_id>": lambda w: Call(
        f"/api/v1/alerts/channels/{_channel(w)}", {"enabled": False}
    ),
    "DELETE /api/v1/alerts/channels/<int:channel_id>": lambda w: Call(
        f"/api/v1/alerts/channels/{_channel(w)}"
    ),
    "POST /api/v1/alerts/channels/<int:channel_id>/test": lambda w: Call(
        f"/api/v1/alerts/channels/{_channel(w, refused_url())}/test"
    ),
    "GET /api/v1/alerts/silences": lambda w: Call("/api/v1/alerts/silences"),
    "POST /api/v1/alerts/silences": lambda w: Call("/api/v1/alerts/silences", _silence_body()),
    "GET /api/v1/alerts/silences/<int:silence_id>": lambda w: Call(f"/api/v1/alerts/silences/{_silence(w)}"),
    "PUT /api/v1/alerts/silences/<int:silence_id>": lambda w: Call(
        f"/api/v1/alerts/silences/{_silence(w)}", _silence_body()
    ),
    "DELETE /api/v1/alerts/silences/<int:silence_id>": lambda w: Call(
        f"/api/v1/alerts/silences/{_silence(w)}"
    ),
    "GET /api/v1/alerts/states": lambda w: Call("/api/v1/alerts/states"),
    "GET /api/v1/alerts/events": lambda w: Call("/api/v1/alerts/events"),
    "GET /api/v1/alerts/notifications": lambda w: Call("/api/v1/alerts/notifications"),
    "GET /api/v1/services/series": lambda w: Call("/api/v1/services/series"),
    "GET /api/v1/services/<str:service>/series": lambda w: Call("/api/v1/services/checkout/series"),
    "GET /api/v1/services/<str:service>/slowest": lambda w: Call("/api/v1/services/checkout/slowest"),
    "GET /api/v1/logs/histogram": lambda w: Call("/api/v1/logs/histogram"),
    "GET /api/v1/traces/<str:trace_id>/waterfall": lambda w: Call(f"/api/v1/traces/{'ab' * 16}/waterfall"),
    "GET /api/v1/traces/<str:trace_id>/spans/<str:span_id>": lambda w: Call(
        f"/api/v1/traces/{'ab' * 16}/spans/{'cd' * 8}"
    ),
    "GET /api/v1/dashboards": lambda w: Call("/api/v1/dashboards"),
    "POST /api/v1/dashboards": lambda w: Call("/api/v1/dashboards", DASHBOARD),
    "GET /api/v1/dashboards/<int:dashboard_id>": lambda w: Call(f"/api/v1/dashboards/{_dashboard(w)}"),
    "PUT /api/v1/dashboards/<int:dashboard_id>": lambda w: Call(
        f"/api/v1/dashboards/{_dashboard(w)}", {**DASHBOARD, "version": 1}
    ),
    "DELETE /api/v1/dashboards/<int:dashboard_id>": lambda w: Call(f"/api/v1/dashboards/{_dashboard(w)}"),
}


# --- the endpoints the server has ----------------------------------------------------------------------


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.callback


def api_endpoints() -> dict[str, Any]:
    """``METHOD /route`` → view class, for every API route the resolver knows."""
    found: dict[str, Any] = {}
    for route, callback in _walk(get_resolver().url_patterns):
        if not route.startswith(API_PREFIXES):
            continue
        view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
        methods = [
            m.upper()
            for m in getattr(view_class, "http_method_names", ["get", "post"])
            if m not in ("options", "head", "trace") and (view_class is None or hasattr(view_class, m))
        ]
        for method in methods or ["GET"]:
            found[f"{method} /{route}"] = view_class or callback
    return found


def rows_of(endpoint: str) -> list[str]:
    return [row for row in TABLE if row == endpoint or row.startswith(endpoint + " [")]


def expected(row: str) -> dict[str, int]:
    users, keys = TABLE[row].split("|")
    codes = users.split() + keys.split()
    assert len(codes) == len(COLUMNS), f"{row}: {len(codes)} cells for {len(COLUMNS)} columns"
    return dict(zip(COLUMNS, (int(c) for c in codes), strict=True))


def test_every_api_endpoint_declares_its_permission() -> None:
    """Each API view is a DRF view guarded by TenantPermission with a requirement for each method."""
    problems = []
    for endpoint, view in sorted(api_endpoints().items()):
        method = endpoint.split()[0]
        if not (isinstance(view, type) and issubclass(view, APIView)):
            problems.append(f"{endpoint}: {view!r} is not a DRF view; derive it from ReadView")
            continue
        if not any(isinstance(p, type) and issubclass(p, TenantPermission) for p in view.permission_classes):
            problems.append(f"{endpoint}: {view.__name__}.permission_classes lacks TenantPermission")
        if required_permission(view, method) is None:
            problems.append(f"{endpoint}: {view.__name__} declares no required_permission for {method}")
    assert not problems, "\n".join(problems)


def test_every_api_endpoint_is_in_the_matrix() -> None:
    endpoints = api_endpoints()
    missing = [e for e in sorted(endpoints) if not rows_of(e)]
    assert not missing, (
        "endpoints without a row in tests/api/test_roles_matrix.py TABLE (classify them, with a request in "
        "REQUESTS):\n" + "\n".join(missing)
    )
    stale = [row for row in TABLE if row.split(" [")[0] not in endpoints]
    assert not stale, "rows for endpoints that no longer exist:\n" + "\n".join(stale)
    assert set(REQUESTS) == set(TABLE), set(REQUESTS) ^ set(TABLE)


@pytest.fixture
def world(clickhouse: Any) -> World:
    logic.create_tenant("acme")
    logic.create_tenant("beta")
    users = {}
    for role in ("owner", "admin", "editor", "viewer"):
        users[role] = get_user_model().objects.create_user(f"{role}-user", password=PASSWORD)
        logic.set_membership("acme", users[role], role)
    users["outsider"] = get_user_model().objects.create_user("outsider-user", password=PASSWORD)
    logic.set_membership("beta", users["outsider"], "owner")
    keys = {
        "key:read": logic.issue_api_key("acme", "read", ("read",)).raw,
        "key:write": logic.issue_api_key("acme", "write", ("write",)).raw,
        "key:admin": logic.issue_api_key("acme", "admin", ("admin",)).raw,
        "key:other": logic.issue_api_key("beta", "other", ("admin",)).raw,
    }
    return World(users, keys)


def _client(world: World, column: str, via: str) -> APIClient:
    client = APIClient()
    if column in world.keys:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {world.keys[column]}")
    elif column != "anonymous":
        user = world.users[column]
        if via == "session":
            client.force_login(user)
        else:
            access = auth.issue_tokens(logic.TokenSubject(user.pk, user.username)).access
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def _cells(row: str) -> list[tuple[str, str]]:
    """(column, via) pairs: users with a session and with a JWT; anonymous and keys once."""
    cells = []
    for column in COLUMNS:
        if column in USERS and column != "anonymous":
            cells += [(column, "session"), (column, "jwt")]
        else:
            cells.append((column, "header"))
    return cells


@pytest.mark.parametrize("row", sorted(TABLE))
def test_matrix(world: World, row: str) -> None:
    cache.clear()  # sign-in attempts are rate-limited per address
    method = row.split()[0]
    wrong = []
    for column, via in _cells(row):
        call = REQUESTS[row](world)
        client = _client(world, column, via)
        send = getattr(client, method.lower())
        query = urlencode({**call.query, "tenant": "acme"})
        response = send(f"{call.path}?{query}", call.body, format="json")
        want = expected(row)[column]
        if response.status_code != want:
            detail = response.json().get("error", "") if response.content else ""
            wrong.append(f"{column} ({via}): {response.status_code}, expected {want} {detail}")
    assert not wrong, f"{row}:\n" + "\n".join(wrong)


def test_table_shape() -> None:
    """Each row parses; an anonymous caller never gets further than 401 except on public endpoints."""
    for row in TABLE:
        cells = expected(row)
        assert cells["anonymous"] in (200, 401), row
        assert re.match(r"^(GET|POST|PATCH|PUT|DELETE) /", row), row
