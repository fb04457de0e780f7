"""The alert REST API: rules, channels and silences through their lifecycle, secrets never shown back,
refusals that name the field, tenants kept apart, and the reads of states, events and the delivery log."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from alerts import logic
from alerts.models import AlertEvent, AlertState, Notification, Rule, State
from tenants import logic as tenants
from tests.alerts.recorder import Recorder, refused_url

pytestmark = pytest.mark.django_db

RULE: dict[str, Any] = {
    "name": "checkout errors",
    "service": "checkout",
    "red_figure": "error_rate",
    "threshold": 0.05,
}
PD_KEY = "0123456789abcdef0123456789abcdef"
SLACK = "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXX"


def json_client() -> APIClient:
    """Sends bodies as JSON (nested lists and objects do not survive form encoding)."""
    client = APIClient()
    client.default_format = "json"
    return client


def key_client(tenant: str, *scopes: str) -> APIClient:
    client = json_client()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tenants.issue_api_key(tenant, 'tests', scopes).raw}")
    return client


@pytest.fixture
def acme() -> str:
    return tenants.create_tenant("acme").tenant_id


@pytest.fixture
def api(acme: str) -> APIClient:
    return key_client("acme", "read", "write")


@pytest.fixture
def beta() -> APIClient:
    tenants.create_tenant("beta")
    return key_client("beta", "read", "write")


def error(response: Any) -> str:
    return str(response.json()["error"])


def test_rule_lifecycle(api: APIClient) -> None:
    hook = api.post("/api/v1/alerts/channels", {"name": "hook", "kind": "webhook", "url": "https://e.x/h"})
    assert hook.status_code == 201, hook.content
    created = api.post(
        "/api/v1/alerts/rules", {**RULE, "channels": [hook.json()["id"]], "labels": {"t": "p"}}
    )
    assert created.status_code == 201, created.content
    rule = created.json()
    assert rule["channels"] == [hook.json()["id"]]
    assert (rule["kind"], rule["source"], rule["severity"], rule["window_seconds"]) == (
        "threshold",
        "red",
        "warning",
        60,
    )
    assert rule["labels"] == {"t": "p"}
    url = f"/api/v1/alerts/rules/{rule['id']}"
    assert api.get(url).json() == rule
    assert [r["id"] for r in api.get("/api/v1/alerts/rules").json()["rules"]] == [rule["id"]]

    patched = api.patch(url, {"enabled": False, "threshold": 0.1}).json()
    assert (patched["enabled"], patched["threshold"], patched["service"]) == (False, 0.1, "checkout")
    assert api.get("/api/v1/alerts/rules", {"enabled": "true"}).json()["rules"] == []

    replaced = api.put(url, {"name": "renamed", "source": "promql", "expr": "sum(up) < 1"})
    assert replaced.status_code == 200, replaced.content
    body = replaced.json()
    assert (body["name"], body["service"], body["enabled"], body["channels"]) == ("renamed", "", True, [])

    assert api.delete(url).status_code == 204
    assert api.get(url).status_code == 404
    assert not Rule.objects.filter(pk=rule["id"]).exists()


def test_rule_refusals_name_the_field(api: APIClient) -> None:
    missing = api.post("/api/v1/alerts/rules", {**RULE, "red_figure": ""})
    assert missing.status_code == 400
    assert error(missing).startswith("red_figure: source red needs one of")
    promql = api.post("/api/v1/alerts/rules", {"name": "p", "source": "promql", "expr": "rate(x[5m])[1h:]"})
    assert promql.status_code == 400
    assert "expr: the expression is a range vector" in error(promql)
    typo = api.post("/api/v1/alerts/rules", {**RULE, "treshold": 3})
    assert typo.status_code == 400
    assert error(typo).startswith("treshold: unknown field; send ")
    wrong_type = api.post("/api/v1/alerts/rules", {**RULE, "window_seconds": "soon"})
    assert wrong_type.status_code == 400
    assert "window_seconds" in error(wrong_type)
    assert api.post("/api/v1/alerts/rules", RULE).status_code == 201
    taken = api.post("/api/v1/alerts/rules", RULE)
    assert taken.status_code == 409
    assert "already exists" in error(taken)
    not_a_channel = api.post("/api/v1/alerts/rules", {**RULE, "name": "x", "channels": [999999]})
    assert not_a_channel.status_code == 400
    assert "channels: no channel 999999" in error(not_a_channel)


def test_ids_of_another_tenant_are_not_found(api: APIClient, beta: APIClient) -> None:
    rule = beta.post("/api/v1/alerts/rules", RULE).json()
    channel = beta.post(
        "/api/v1/alerts/channels", {"name": "pd", "kind": "pagerduty", "secret": PD_KEY}
    ).json()
    ends = (timezone.now() + timedelta(hours=1)).isoformat()
    silence = beta.post(
        "/api/v1/alerts/silences", {"matchers": [{"name": "service", "value": "x"}], "ends_at": ends}
    ).json()
    for path in (
        f"/api/v1/alerts/rules/{rule['id']}",
        f"/api/v1/alerts/channels/{channel['id']}",
        f"/api/v1/alerts/silences/{silence['id']}",
    ):
        assert api.get(path).status_code == 404
        assert api.delete(path).status_code == 404
    assert api.patch(f"/api/v1/alerts/rules/{rule['id']}", {"enabled": False}).status_code == 404
    assert api.post(f"/api/v1/alerts/channels/{channel['id']}/test").status_code == 404
    # A rule cannot point at another tenant's channel either.
    stolen = api.post("/api/v1/alerts/rules", {**RULE, "channels": [channel["id"]]})
    assert stolen.status_code == 400
    assert Rule.objects.get(pk=rule["id"]).enabled
    for listing in ("rules", "channels", "silences"):
        assert api.get(f"/api/v1/alerts/{listing}").json()[listing] == []


def test_secrets_are_write_only(acme: str, api: APIClient) -> None:
    pd = api.post("/api/v1/alerts/channels", {"name": "pd", "kind": "pagerduty", "secret": PD_KEY})
    assert pd.status_code == 201, pd.content
    slack = api.post("/api/v1/alerts/channels", {"name": "slack", "kind": "slack", "url": SLACK})
    assert slack.status_code == 201, slack.content
    listing = api.get("/api/v1/alerts/channels")
    text = listing.content.decode()
    assert PD_KEY not in text
    assert "XXXXXXXXXXXXXXXX" not in text
    channels = {c["name"]: c for c in listing.json()["channels"]}
    assert channels["slack"]["url"] == "https://hooks.slack.com/…"
    assert channels["pd"]["secret_set"] is True
    assert "secret" not in channels["pd"]
    # Sending back what was shown does not overwrite the secret or the URL.
    shown = {k: v for k, v in channels["slack"].items() if k not in ("url",)}
    assert api.put(f"/api/v1/alerts/channels/{shown['id']}", shown).status_code == 200
    assert logic.get_channel(acme, shown["id"]).url == SLACK
    renamed = api.patch(f"/api/v1/alerts/channels/{channels['pd']['id']}", {"name": "pagerduty"})
    assert renamed.json()["secret_set"] is True


def test_channel_refusals(api: APIClient) -> None:
    short = api.post("/api/v1/alerts/channels", {"name": "pd", "kind": "pagerduty", "secret": "abc"})
    assert short.status_code == 400
    assert error(short).startswith("secret: a pagerduty channel needs the integration (routing) key")
    mail = api.post(
        "/api/v1/alerts/channels", {"name": "m", "kind": "email", "recipients": ["ops@", "a@b.io"]}
    )
    assert mail.status_code == 400
    assert error(mail) == "recipients: 'ops@' is not an email address"
    window = api.post(
        "/api/v1/alerts/channels",
        {
            "name": "w",
            "kind": "webhook",
            "url": "https://e.x/h",
            "mute_windows": [{"start": "25:00", "end": "01:00"}],
        },
    )
    assert window.status_code == 400
    assert "mute_windows: window 1: start" in error(window)
    ok = api.post(
        "/api/v1/alerts/channels",
        {
            "name": "mail",
            "kind": "email",
            "recipients": ["ops@example.com"],
            "group_by": ["service.name"],
            "mute_windows": [
                {"weekdays": [5, 6], "start": "22:00", "end": "06:00", "timezone": "Europe/Paris"}
            ],
        },
    )
    assert ok.status_code == 201, ok.content
    assert ok.json()["mute_windows"] == [
        {"weekdays": [5, 6], "start": "22:00", "end": "06:00", "timezone": "Europe/Paris"}
    ]


def test_channel_test_sends_through_the_channel(api: APIClient) -> None:
    with Recorder() as target:
        hook = api.post(
            "/api/v1/alerts/channels", {"name": "hook", "kind": "webhook", "url": target.url}
        ).json()
        sent = api.post(f"/api/v1/alerts/channels/{hook['id']}/test")
        assert sent.status_code == 200, sent.content
        assert sent.json()["ok"] is True
        assert len(target.wait_for(1)) == 1
    down = api.post(
        "/api/v1/alerts/channels", {"name": "down", "kind": "webhook", "url": refused_url()}
    ).json()
    failed = api.post(f"/api/v1/alerts/channels/{down['id']}/test").json()
    assert failed["ok"] is False
    assert failed["error"]
    assert Notification.objects.count() == 0


def test_silences(api: APIClient) -> None:
    ends = (timezone.now() + timedelta(hours=1)).isoformat()
    matchers = [{"name": "service", "value": "check.*", "is_regex": True}]
    created = api.post(
        "/api/v1/alerts/silences", {"matchers": matchers, "ends_at": ends, "comment": "deploy"}
    )
    assert created.status_code == 201, created.content
    silence = created.json()
    assert silence["status"] == "active"
    assert silence["matchers"] == [
        {"name": "service", "value": "check.*", "is_regex": True, "is_equal": True}
    ]
    everything = api.post(
        "/api/v1/alerts/silences",
        {"matchers": [{"name": "x", "value": ".*", "is_regex": True}], "ends_at": ends},
    )
    assert everything.status_code == 400
    assert "mute everything" in error(everything)
    past = api.post("/api/v1/alerts/silences", {"matchers": matchers, "ends_at": "2001-01-01T00:00:00Z"})
    assert past.status_code == 400
    assert error(past).startswith("ends_at:")
    later = (timezone.now() + timedelta(hours=5)).isoformat()
    changed = api.put(f"/api/v1/alerts/silences/{silence['id']}", {"matchers": matchers, "ends_at": later})
    assert changed.status_code == 200, changed.content
    expired = api.delete(f"/api/v1/alerts/silences/{silence['id']}")
    assert expired.status_code == 200
    assert expired.json()["status"] == "expired"
    assert api.get("/api/v1/alerts/silences", {"status": "active"}).json()["silences"] == []
    assert [
        x["id"] for x in api.get("/api/v1/alerts/silences", {"status": "expired"}).json()["silences"]
    ] == [silence["id"]]


def test_states_events_and_the_delivery_log(acme: str, api: APIClient, beta: APIClient) -> None:
    rule = logic.create_rule(acme, logic.RuleSpec(**RULE))
    other = logic.create_rule(acme, logic.RuleSpec(**{**RULE, "name": "other"}))
    now = timezone.now()
    AlertState.objects.create(tenant_id=acme, rule=rule, state=State.FIRING, value=0.4, labels={"a": "b"})
    AlertState.objects.create(tenant_id=acme, rule=other, state=State.PENDING, value=0.1)
    AlertState.objects.create(tenant_id=acme, rule=other, series="s2", state=State.INACTIVE)
    fired = AlertEvent.objects.create(
        tenant_id=acme, rule=rule, from_state="pending", to_state="firing", value=0.4, threshold=0.05, at=now
    )
    AlertEvent.objects.create(
        tenant_id=acme, rule=rule, from_state="inactive", to_state="pending", at=now - timedelta(hours=1)
    )
    states = api.get("/api/v1/alerts/states").json()["alerts"]
    assert sorted(s["state"] for s in states) == ["firing", "pending"]
    firing = api.get("/api/v1/alerts/states", {"state": "firing"}).json()["alerts"]
    assert [(s["rule"], s["value"], s["labels"]) for s in firing] == [("checkout errors", 0.4, {"a": "b"})]
    assert api.get("/api/v1/alerts/states", {"state": "inactive"}).status_code == 400

    events = api.get("/api/v1/alerts/events", {"rule": rule.pk}).json()["events"]
    assert [e["to_state"] for e in events] == ["firing", "pending"]
    recent = api.get("/api/v1/alerts/events", {"since": str((now - timedelta(minutes=5)).timestamp())})
    assert [e["id"] for e in recent.json()["events"]] == [fired.pk]
    assert len(api.get("/api/v1/alerts/events", {"limit": 1}).json()["events"]) == 1
    assert api.get("/api/v1/alerts/events", {"rules": 1}).status_code == 400

    channel = logic.create_channel(acme, logic.ChannelSpec(name="hook", kind="webhook", url="https://e.x/h"))
    failed = Notification.objects.create(
        tenant_id=acme,
        channel=channel,
        rule=rule,
        group_key="g",
        dedup_key="d",
        status="failed",
        attempts=2,
        last_error="connection refused",
    )
    failed.events.add(fired)
    failed.delivery_attempts.create(ok=False, status_code=503, error="503 Service Unavailable", duration_ms=3)
    failed.delivery_attempts.create(ok=False, error="connection refused", duration_ms=1)
    Notification.objects.create(tenant_id=acme, channel=channel, rule=rule, group_key="g", dedup_key="e")
    log = api.get("/api/v1/alerts/notifications", {"status": "failed"}).json()["notifications"]
    assert len(log) == 1
    assert (log[0]["channel"], log[0]["rule"], log[0]["last_error"], log[0]["event_ids"]) == (
        "hook",
        "checkout errors",
        "connection refused",
        [fired.pk],
    )
    assert [(a["status_code"], a["error"]) for a in log[0]["delivery_attempts"]] == [
        (503, "503 Service Unavailable"),
        (None, "connection refused"),
    ]
    assert len(api.get("/api/v1/alerts/notifications").json()["notifications"]) == 2
    for path, key in (("states", "alerts"), ("events", "events"), ("notifications", "notifications")):
        assert beta.get(f"/api/v1/alerts/{path}").json()[key] == []


def test_created_by_is_the_signed_in_user(acme: str) -> None:
    user = get_user_model().objects.create_user("ed", password="pw-ed-12345")
    tenants.set_membership("acme", user, "editor")
    client = json_client()
    client.force_login(user)
    created = client.post("/api/v1/alerts/rules?tenant=acme", RULE, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["created_by"] == "ed"
