"""Alert configuration logic: every kind and source is validated, and refusals name the field to fix."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from alerts import logic
from alerts.logic import ChannelSpec, InvalidSpec, Matcher, RuleSpec, SilenceSpec
from alerts.models import AlertEvent, AlertState, Notification, Rule, State
from tenants import logic as tenants

pytestmark = pytest.mark.django_db

RED = RuleSpec(name="checkout errors", service="checkout", red_figure="error_rate", threshold=0.05)
PD_KEY = "a" * 32


@pytest.fixture
def tenant() -> str:
    return tenants.create_tenant("acme").tenant_id


@pytest.fixture
def other() -> str:
    return tenants.create_tenant("beta").tenant_id


def refused(field: str, call: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(InvalidSpec) as caught:
        call(*args, **kwargs)  # type: ignore[operator]
    assert caught.value.field == field, str(caught.value)
    return caught.value.message


# --- rules -------------------------------------------------------------------------------------------


def test_red_rule_round_trip(tenant: str) -> None:
    hook = logic.create_channel(tenant, ChannelSpec(name="hook", kind="webhook", url="http://127.0.0.1:9/x"))
    rule = logic.create_rule(tenant, replace(RED, labels={"team": "payments"}, channel_ids=(hook.pk,)))
    assert rule.service == "checkout"
    assert rule.red_figure == "error_rate"
    assert [c.pk for c in rule.channels.all()] == [hook.pk]
    spec = logic.rule_spec(rule)
    assert spec == replace(RED, labels={"team": "payments"}, channel_ids=(hook.pk,))
    assert logic.list_rules(tenant) == [rule]


def test_red_needs_service_and_figure(tenant: str) -> None:
    assert "service" in refused("service", logic.create_rule, tenant, replace(RED, service=" "))
    message = refused("red_figure", logic.create_rule, tenant, replace(RED, red_figure=""))
    assert "error_rate" in message
    assert "latency" in message
    refused("red_figure", logic.create_rule, tenant, replace(RED, red_figure="throughput"))
    refused("quantile", logic.create_rule, tenant, replace(RED, red_figure="latency", quantile=0.999))


def test_fields_a_source_does_not_use_are_reset(tenant: str) -> None:
    rule = logic.create_rule(tenant, replace(RED, log_query="boom", expr="up", quantile=0.7))
    assert (rule.log_query, rule.expr, rule.quantile) == ("", "", 0.95)
    promql = logic.patch_rule(tenant, rule.pk, source="promql", expr="sum(rate(http_errors_total[1m]))")
    assert (promql.service, promql.red_figure, promql.expr) == ("", "", "sum(rate(http_errors_total[1m]))")


def test_logs_needs_words_or_severity_except_for_absence(tenant: str) -> None:
    base = RuleSpec(name="logs", source="logs", threshold=10)
    assert "log_min_severity" in refused("log_query", logic.create_rule, tenant, base)
    refused("log_query", logic.create_rule, tenant, replace(base, log_query="!!! ..."))
    refused("log_min_severity", logic.create_rule, tenant, replace(base, log_min_severity=25))
    rule = logic.create_rule(
        tenant, replace(base, log_query="  payment   failed ", red_figure="latency", service="checkout")
    )
    assert (rule.log_query, rule.red_figure, rule.service) == ("payment failed", "", "")
    assert logic.create_rule(tenant, replace(base, name="sev", log_min_severity=17)).log_min_severity == 17
    absent = logic.create_rule(tenant, replace(base, name="quiet", kind="absence", threshold=3))
    assert absent.threshold == 0


def test_promql_is_parsed_and_range_vectors_refused(tenant: str) -> None:
    base = RuleSpec(name="p", source="promql", expr="sum by (job) (rate(http_requests_total[5m])) > 3")
    assert logic.create_rule(tenant, base).expr == base.expr
    message = refused("expr", logic.create_rule, tenant, replace(base, name="bad", expr="sum(rate(x[5m])"))
    assert "parse error" in message
    for expr in ("up[5m]", "(up[5m])", "rate(up[5m])[10m:1m]"):
        assert "range vector" in refused(
            "expr", logic.create_rule, tenant, replace(base, name="r", expr=expr)
        )
    refused("expr", logic.create_rule, tenant, replace(base, name="s", expr='"text"'))
    refused("expr", logic.create_rule, tenant, replace(base, name="e", expr=""))


def test_anomaly_needs_red_or_promql(tenant: str) -> None:
    spec = RuleSpec(name="a", kind="anomaly", source="logs", log_query="error")
    assert "red or promql" in refused("source", logic.create_rule, tenant, spec)
    refused("anomaly_z", logic.create_rule, tenant, replace(RED, kind="anomaly", anomaly_z=0.1))
    assert logic.create_rule(tenant, replace(RED, kind="anomaly", anomaly_z=4)).anomaly_z == 4


def test_absence_on_red_needs_only_the_service(tenant: str) -> None:
    rule = logic.create_rule(tenant, RuleSpec(name="gone", kind="absence", service="checkout", threshold=5))
    assert (rule.red_figure, rule.threshold) == ("", 0)


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("kind", {"kind": "sometimes"}),
        ("source", {"source": "sql"}),
        ("severity", {"severity": "fatal"}),
        ("comparator", {"comparator": "=="}),
        ("window_seconds", {"window_seconds": 0}),
        ("window_seconds", {"window_seconds": 86_401}),
        ("for_seconds", {"for_seconds": -1}),
        ("keep_firing_seconds", {"keep_firing_seconds": 100_000}),
        ("labels", {"labels": {"1bad": "x"}}),
        ("labels", {"labels": {"team": 3}}),
        ("name", {"name": "  "}),
        ("threshold", {"threshold": float("nan")}),
    ],
)
def test_rule_fields_are_checked(tenant: str, field: str, change: dict[str, Any]) -> None:
    refused(field, logic.create_rule, tenant, replace(RED, **change))


def test_rule_names_are_unique_per_tenant(tenant: str, other: str) -> None:
    logic.create_rule(tenant, RED)
    with pytest.raises(logic.NameTaken, match="already exists"):
        logic.create_rule(tenant, RED)
    logic.create_rule(other, RED)
    second = logic.create_rule(tenant, replace(RED, name="second"))
    with pytest.raises(logic.NameTaken):
        logic.patch_rule(tenant, second.pk, name=RED.name)


def test_channels_of_other_tenants_are_refused(tenant: str, other: str) -> None:
    theirs = logic.create_channel(other, ChannelSpec(name="x", kind="email", recipients=("a@example.com",)))
    message = refused("channels", logic.create_rule, tenant, replace(RED, channel_ids=(theirs.pk,)))
    assert str(theirs.pk) in message


def test_rules_of_other_tenants_are_not_found(tenant: str, other: str) -> None:
    rule = logic.create_rule(other, RED)
    for call in (
        lambda: logic.get_rule(tenant, rule.pk),
        lambda: logic.update_rule(tenant, rule.pk, RED),
        lambda: logic.patch_rule(tenant, rule.pk, threshold=1),
        lambda: logic.set_rule_enabled(tenant, rule.pk, False),
        lambda: logic.delete_rule(tenant, rule.pk),
    ):
        with pytest.raises(logic.NotFound):
            call()
    assert Rule.objects.get(pk=rule.pk).enabled


def test_update_enable_and_delete(tenant: str) -> None:
    rule = logic.create_rule(tenant, RED)
    updated = logic.update_rule(tenant, rule.pk, replace(RED, threshold=0.2, for_seconds=30))
    assert (updated.threshold, updated.for_seconds) == (0.2, 30)
    assert updated.updated_at >= rule.updated_at
    assert logic.set_rule_enabled(tenant, rule.pk, False).enabled is False
    assert logic.list_rules(tenant, enabled=True) == []
    refused("nope", logic.patch_rule, tenant, rule.pk, nope=1)
    logic.delete_rule(tenant, rule.pk)
    assert not Rule.objects.filter(pk=rule.pk).exists()


# --- channels ----------------------------------------------------------------------------------------


def test_channel_kinds_need_their_destination(tenant: str) -> None:
    refused("url", logic.create_channel, tenant, ChannelSpec(name="am", kind="alertmanager"))
    refused("url", logic.create_channel, tenant, ChannelSpec(name="am", kind="alertmanager", url="ftp://x"))
    refused("url", logic.create_channel, tenant, ChannelSpec(name="s", kind="slack", url="http://hooks.x/y"))
    message = refused(
        "secret", logic.create_channel, tenant, ChannelSpec(name="pd", kind="pagerduty", secret="x")
    )
    assert "32" in message
    refused("recipients", logic.create_channel, tenant, ChannelSpec(name="e", kind="email"))
    message = refused(
        "recipients", logic.create_channel, tenant, ChannelSpec(name="e", kind="email", recipients=("ops@",))
    )
    assert "ops@" in message
    refused("kind", logic.create_channel, tenant, ChannelSpec(name="k", kind="sms"))


def test_channel_secret_and_url_are_kept_unless_given(tenant: str) -> None:
    pd = logic.create_channel(tenant, ChannelSpec(name="pd", kind="pagerduty", secret=PD_KEY))
    assert pd.url == ""
    assert pd.secret == PD_KEY
    renamed = logic.update_channel(tenant, pd.pk, ChannelSpec(name="pagerduty", kind="pagerduty"))
    assert (renamed.name, renamed.secret) == ("pagerduty", PD_KEY)
    slack = logic.create_channel(
        tenant, ChannelSpec(name="slack", kind="slack", url="https://hooks.slack.com/services/T/B/x")
    )
    patched = logic.patch_channel(tenant, slack.pk, send_resolved=False)
    assert patched.url == "https://hooks.slack.com/services/T/B/x"
    assert not patched.send_resolved
    # Another kind does not inherit the old kind's secret.
    refused("secret", logic.patch_channel, tenant, slack.pk, kind="pagerduty")


def test_email_recipients_are_parsed(tenant: str) -> None:
    assert logic.parse_recipients("a@example.com, b@example.com\nc@example.com;a@example.com") == (
        "a@example.com",
        "b@example.com",
        "c@example.com",
    )
    channel = logic.create_channel(
        tenant, ChannelSpec(name="mail", kind="email", recipients=("ops@example.com", "dev@example.com"))
    )
    assert channel.recipients == "ops@example.com\ndev@example.com"
    assert logic.channel_spec(channel).recipients == ("ops@example.com", "dev@example.com")


def test_group_by_and_mute_windows_are_checked(tenant: str) -> None:
    base = ChannelSpec(name="hook", kind="webhook", url="https://example.com/hook")
    refused("group_by", logic.create_channel, tenant, replace(base, group_by=("service name",)))
    window = {"weekdays": [5, 6, 5], "start": "22:00", "end": "06:00", "timezone": "Europe/Paris"}
    channel = logic.create_channel(
        tenant, replace(base, group_by=("service.name", "severity", "severity"), mute_windows=(window,))
    )
    assert channel.group_by == ["service.name", "severity"]
    assert channel.mute_windows == [{**window, "weekdays": [5, 6]}]
    cases: list[tuple[Any, str]] = [
        ({"start": "9:00", "end": "10:00"}, "HH:MM"),
        ({"start": "09:00", "end": "24:00"}, "HH:MM"),
        ({"start": "09:00", "end": "09:00"}, "equal"),
        ({"start": "09:00", "end": "10:00", "weekdays": [7]}, "weekdays"),
        ({"start": "09:00", "end": "10:00", "weekdays": []}, "weekdays"),
        ({"start": "09:00", "end": "10:00", "timezone": "Mars/Olympus"}, "time zone"),
        ({"start": "09:00", "end": "10:00", "days": [1]}, "unknown key"),
        ("09:00-10:00", "object"),
    ]
    for bad, words in cases:
        message = refused(
            "mute_windows", logic.create_channel, tenant, replace(base, name="m", mute_windows=(bad,))
        )
        assert words in message, message
    default_zone = logic.create_channel(
        tenant, replace(base, name="utc", mute_windows=({"start": "01:00", "end": "02:00"},))
    )
    assert default_zone.mute_windows[0]["timezone"] == "UTC"
    assert default_zone.mute_windows[0]["weekdays"] == list(range(7))


def test_channel_limits(tenant: str) -> None:
    base = ChannelSpec(name="hook", kind="webhook", url="https://example.com/hook")
    refused("max_attempts", logic.create_channel, tenant, replace(base, max_attempts=0))
    refused("group_wait_seconds", logic.create_channel, tenant, replace(base, group_wait_seconds=7200))
    logic.create_channel(tenant, base)
    with pytest.raises(logic.NameTaken):
        logic.create_channel(tenant, base)


def test_deleting_a_channel_detaches_it(tenant: str) -> None:
    hook = logic.create_channel(tenant, ChannelSpec(name="hook", kind="webhook", url="https://example.com/h"))
    rule = logic.create_rule(tenant, replace(RED, channel_ids=(hook.pk,)))
    assert not logic.set_channel_enabled(tenant, hook.pk, False).enabled
    logic.delete_channel(tenant, hook.pk)
    assert list(logic.get_rule(tenant, rule.pk).channels.all()) == []
    with pytest.raises(logic.NotFound):
        logic.delete_channel(tenant, hook.pk)


# --- silences ----------------------------------------------------------------------------------------


def test_silence_lifecycle(tenant: str, other: str) -> None:
    now = timezone.now()
    spec = SilenceSpec(
        matchers=(Matcher("service", "checkout"),), ends_at=now + timedelta(hours=1), comment=" x "
    )
    silence = logic.create_silence(tenant, spec)
    assert silence.matchers == [{"name": "service", "value": "checkout", "is_regex": False, "is_equal": True}]
    assert logic.silence_status(silence) == "active"
    assert silence.comment == "x"
    later = logic.create_silence(
        tenant, replace(spec, starts_at=now + timedelta(hours=2), ends_at=now + timedelta(hours=3))
    )
    assert logic.silence_status(later) == "pending"
    assert [s.pk for s in logic.list_silences(tenant, "active")] == [silence.pk]
    with pytest.raises(logic.NotFound):
        logic.expire_silence(other, silence.pk)
    expired = logic.expire_silence(tenant, later.pk)
    assert logic.silence_status(expired) == "expired"
    assert expired.starts_at <= expired.ends_at
    assert [s.pk for s in logic.list_silences(tenant, "expired")] == [later.pk]
    assert logic.list_silences(other) == []


def test_silences_are_checked() -> None:
    now = timezone.now()
    ok = SilenceSpec(matchers=(Matcher("service", "checkout"),), ends_at=now + timedelta(hours=1))
    refused("matchers", logic.check_silence, replace(ok, matchers=()))
    message = refused(
        "matchers", logic.check_silence, replace(ok, matchers=(Matcher("service", ".*", is_regex=True),))
    )
    assert "everything" in message
    refused("matchers", logic.check_silence, replace(ok, matchers=(Matcher("service", "(", is_regex=True),)))
    refused("matchers", logic.check_silence, replace(ok, matchers=(Matcher("bad name", "x"),)))
    refused("ends_at", logic.check_silence, replace(ok, ends_at=now - timedelta(seconds=1)))
    refused("ends_at", logic.check_silence, replace(ok, starts_at=now + timedelta(hours=2)))
    assert logic.check_silence(ok, now).starts_at == now
    with pytest.raises(InvalidSpec):
        logic.matchers_from_json([{"name": "a"}])
    assert logic.matchers_from_json([{"name": "a", "value": "b", "is_equal": False}]) == (
        Matcher("a", "b", is_equal=False),
    )


def test_matchers_follow_alertmanager() -> None:
    labels = {"service": "checkout", "severity": "critical"}
    assert logic.matches(Matcher("service", "check.*", is_regex=True), labels)
    assert not logic.matches(Matcher("service", "check", is_regex=True), labels)  # anchored
    assert logic.matches(Matcher("team", ""), labels)  # a missing label is empty
    assert logic.matches(Matcher("severity", "warning", is_equal=False), labels)


# --- reads -------------------------------------------------------------------------------------------


def test_reads_stay_in_the_tenant(tenant: str, other: str) -> None:
    rule = logic.create_rule(tenant, RED)
    theirs = logic.create_rule(other, RED)
    now = timezone.now()
    for r in (rule, theirs):
        AlertState.objects.create(tenant_id=r.tenant_id, rule=r, state=State.FIRING, value=0.5)
        AlertEvent.objects.create(
            tenant_id=r.tenant_id, rule=r, from_state=State.INACTIVE, to_state=State.FIRING, value=0.5, at=now
        )
    AlertEvent.objects.create(
        tenant_id=rule.tenant_id,
        rule=rule,
        from_state="firing",
        to_state="resolved",
        at=now - timedelta(hours=2),
    )
    assert [s.rule_id for s in logic.current_alerts(tenant)] == [rule.pk]
    assert logic.current_alerts(tenant, state="pending") == []
    assert len(logic.alert_events(tenant)) == 2
    assert len(logic.alert_events(tenant, since=now - timedelta(minutes=1))) == 1
    assert [e.to_state for e in logic.alert_events(tenant, to_state="resolved")] == ["resolved"]
    assert logic.alert_events(tenant, rule_id=theirs.pk) == []
    hook = logic.create_channel(tenant, ChannelSpec(name="hook", kind="webhook", url="https://example.com/h"))
    note = Notification.objects.create(
        tenant_id=rule.tenant_id, channel=hook, rule=rule, group_key="g", dedup_key="d", status="failed"
    )
    note.delivery_attempts.create(ok=False, status_code=500, error="server error")
    found = logic.notifications(tenant, status="failed")
    assert [n.pk for n in found] == [note.pk]
    assert [a.status_code for a in found[0].delivery_attempts.all()] == [500]
    assert logic.notifications(other) == []
