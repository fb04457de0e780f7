"""Alert configuration: rules, channels and silences. The only module that changes them.

Entry points (the REST API, the admin) build a frozen spec, and these functions validate it for its kind and
source, then write it. Validation errors name the field and say what would be accepted, so the API and the
admin show them as they are. The read helpers at the end serve the API: current alerts, their history and
the delivery log.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, time
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from alerts.models import (
    AlertEvent,
    AlertState,
    Channel,
    ChannelKind,
    Comparator,
    DeliveryAttempt,
    Notification,
    NotificationStatus,
    RedFigure,
    Rule,
    RuleKind,
    RuleSource,
    Severity,
    Silence,
    State,
)
from alerts.notify.silences import matcher_matches

log = logging.getLogger(__name__)

MAX_WINDOW_SECONDS = 86_400
MAX_LABELS = 32
MAX_LABEL_VALUE = 200
MAX_LOG_WORDS = 16
MAX_MATCHERS = 32
MAX_RECIPIENTS = 50
MAX_ATTEMPTS = 50
MAX_GROUP_WAIT_SECONDS = 3_600
MAX_REPEAT_INTERVAL_SECONDS = 30 * 86_400
MAX_LIST = 1_000
PAGERDUTY_KEY_LENGTH = 32
# Label names as OpenTelemetry attributes spell them (service.name) and Prometheus (job): letters, digits,
# underscores and dots, not starting with a digit.
LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
# The words ClickHouse's token index knows (see ollystack.telemetry.logs): runs of letters and digits.
LOG_WORD = re.compile(r"[0-9A-Za-z\u0080-\U0010ffff]+")
HH_MM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MUTE_WINDOW_KEYS = {"weekdays", "start", "end", "timezone"}
MATCHER_KEYS = {"name", "value", "is_regex", "is_equal"}


# --- errors -----------------------------------------------------------------------------------------


class AlertError(Exception):
    """A change to the alert configuration that cannot be made; the message says what to fix."""


class InvalidSpec(AlertError):
    """A field of a rule, channel or silence is not acceptable; ``field`` names it ('' for the whole)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}" if field_name else message)
        self.field = field_name
        self.message = message


class NotFound(AlertError):
    pass


class NameTaken(AlertError):
    pass


# --- specs ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleSpec:
    """What a rule is. Fields that the rule's source does not use are reset to their defaults on save."""

    name: str
    kind: str = RuleKind.THRESHOLD
    source: str = RuleSource.RED
    description: str = ""
    service: str = ""
    operation: str = ""
    red_figure: str = ""
    quantile: float = 0.95
    log_query: str = ""
    log_min_severity: int = 0
    expr: str = ""
    comparator: str = Comparator.GT
    threshold: float = 0.0
    anomaly_z: float = 3.0
    window_seconds: int = 60
    for_seconds: int = 0
    keep_firing_seconds: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    severity: str = Severity.WARNING
    channel_ids: tuple[int, ...] = ()
    enabled: bool = True


@dataclass(frozen=True)
class ChannelSpec:
    """Where notifications go. ``url`` and ``secret`` None on an update keep the stored values (they are
    never shown back, so a client cannot send them again)."""

    name: str
    kind: str
    url: str | None = None
    secret: str | None = None
    recipients: tuple[str, ...] = ()
    group_by: tuple[str, ...] = ()
    group_wait_seconds: int = 0
    repeat_interval_seconds: int = 4 * 3600
    send_resolved: bool = True
    mute_windows: tuple[Mapping[str, Any], ...] = ()
    max_attempts: int = 6
    enabled: bool = True


@dataclass(frozen=True)
class Matcher:
    """Alertmanager's matcher: ``name`` = / != / =~ / !~ ``value``; regular expressions match whole values."""

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "is_regex": self.is_regex, "is_equal": self.is_equal}


@dataclass(frozen=True)
class SilenceSpec:
    matchers: tuple[Matcher, ...]
    ends_at: datetime
    starts_at: datetime | None = None  # None: now
    comment: str = ""


# --- shared checks ----------------------------------------------------------------------------------


def _check_label_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not LABEL_NAME.match(name):
        raise InvalidSpec(
            where,
            f"{name!r} is not a label name; use letters, digits, underscores and dots, not starting with "
            "a digit (e.g. service.name)",
        )
    return name


def _check_range(value: float, where: str, low: float, high: float) -> None:
    if not low <= value <= high:
        raise InvalidSpec(where, f"{value} is out of range; use {low:g} to {high:g}")


def _check_choice(value: str, where: str, choices: Iterable[str]) -> None:
    allowed = list(choices)
    if value not in allowed:
        raise InvalidSpec(where, f"{value!r} is not one of {', '.join(allowed)}")


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidSpec("name", "a name is required")
    if len(name) > 200:
        raise InvalidSpec("name", "at most 200 characters")
    return name


def _tenant_uuid(tenant_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(tenant_id))
    except ValueError:
        raise NotFound(f"{tenant_id!r} is not a tenant id") from None


# --- rules ------------------------------------------------------------------------------------------


def _check_promql(expr: str) -> str:
    import promql_parser

    from ollystack.telemetry.promql.errors import PromQLError
    from ollystack.telemetry.promql.parse import parse_query

    expr = expr.strip()
    if not expr:
        raise InvalidSpec("expr", "a PromQL expression is required for source promql")
    try:
        node = parse_query(expr)
    except PromQLError as exc:
        raise InvalidSpec("expr", exc.message.replace('invalid parameter "query": ', "")) from None
    while isinstance(node, promql_parser.ParenExpr):
        node = node.expr
    if isinstance(node, promql_parser.MatrixSelector | promql_parser.SubqueryExpr):
        raise InvalidSpec(
            "expr",
            "the expression is a range vector; an alert needs an instant vector or a scalar, e.g. "
            f"rate({expr}) or max_over_time({expr})",
        )
    if isinstance(node, promql_parser.StringLiteral):
        raise InvalidSpec("expr", "the expression is a string; an alert needs an instant vector or a scalar")
    return expr


def _check_labels(labels: Mapping[str, Any]) -> dict[str, str]:
    if not isinstance(labels, Mapping):
        raise InvalidSpec("labels", 'an object of label names to text values, e.g. {"team": "payments"}')
    if len(labels) > MAX_LABELS:
        raise InvalidSpec("labels", f"at most {MAX_LABELS} labels")
    checked = {}
    for name, value in labels.items():
        _check_label_name(name, "labels")
        if not isinstance(value, str) or len(value) > MAX_LABEL_VALUE:
            raise InvalidSpec(
                "labels", f"the value of {name} must be text of at most {MAX_LABEL_VALUE} characters"
            )
        checked[name] = value
    return checked


def _check_log_query(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > 500:
        raise InvalidSpec("log_query", "at most 500 characters")
    words = LOG_WORD.findall(text)
    if text and not words:
        raise InvalidSpec("log_query", f"{text!r} has no word (letters or digits) to search for")
    if len(words) > MAX_LOG_WORDS:
        raise InvalidSpec("log_query", f"at most {MAX_LOG_WORDS} words")
    return text


def check_rule(tenant_id: str, spec: RuleSpec) -> RuleSpec:
    """The spec as it will be stored (normalised), or ``InvalidSpec`` naming the field to fix."""
    defaults = RuleSpec(name=spec.name)
    name = _check_name(spec.name)
    _check_choice(spec.kind, "kind", RuleKind.values)
    _check_choice(spec.source, "source", RuleSource.values)
    _check_choice(spec.severity, "severity", Severity.values)
    _check_choice(spec.comparator, "comparator", Comparator.values)
    _check_range(spec.window_seconds, "window_seconds", 1, MAX_WINDOW_SECONDS)
    _check_range(spec.for_seconds, "for_seconds", 0, MAX_WINDOW_SECONDS)
    _check_range(spec.keep_firing_seconds, "keep_firing_seconds", 0, MAX_WINDOW_SECONDS)
    if spec.threshold != spec.threshold or spec.threshold in (float("inf"), float("-inf")):
        raise InvalidSpec("threshold", "a finite number is required")
    changes: dict[str, Any] = {
        "name": name,
        "description": spec.description.strip(),
        "labels": _check_labels(spec.labels),
        "channel_ids": tuple(dict.fromkeys(spec.channel_ids)),
    }
    if spec.kind == RuleKind.ANOMALY:
        if spec.source not in (RuleSource.RED, RuleSource.PROMQL):
            raise InvalidSpec(
                "source",
                "anomaly rules compare a RED figure or a PromQL expression with its "
                "trailing hour; use source red or promql, or a threshold rule for logs",
            )
        _check_range(spec.anomaly_z, "anomaly_z", 0.5, 100)
    else:
        changes["anomaly_z"] = defaults.anomaly_z
    if spec.kind == RuleKind.ABSENCE:
        changes["threshold"] = defaults.threshold
        changes["comparator"] = defaults.comparator

    unused: tuple[str, ...]
    if spec.source == RuleSource.RED:
        service = spec.service.strip()
        if not service:
            raise InvalidSpec("service", "source red needs the service (its service.name)")
        changes["service"] = service
        changes["operation"] = spec.operation.strip()
        if spec.kind == RuleKind.ABSENCE:
            unused = ("red_figure", "quantile")
        else:
            if not spec.red_figure:
                raise InvalidSpec("red_figure", f"source red needs one of {', '.join(RedFigure.values)}")
            _check_choice(spec.red_figure, "red_figure", RedFigure.values)
            unused = () if spec.red_figure == RedFigure.LATENCY else ("quantile",)
            if spec.red_figure == RedFigure.LATENCY:
                _check_range(spec.quantile, "quantile", 0.5, 0.99)
        unused += ("log_query", "log_min_severity", "expr")
    elif spec.source == RuleSource.LOGS:
        log_query = _check_log_query(spec.log_query)
        _check_range(spec.log_min_severity, "log_min_severity", 0, 24)
        if spec.kind != RuleKind.ABSENCE and not log_query and not spec.log_min_severity:
            raise InvalidSpec(
                "log_query",
                "source logs needs words to find (log_query) and/or a minimum severity number "
                "(log_min_severity, 1-24: 9 INFO, 13 WARN, 17 ERROR)",
            )
        changes["log_query"] = log_query
        unused = ("service", "operation", "red_figure", "quantile", "expr")
    else:
        changes["expr"] = _check_promql(spec.expr)
        unused = ("service", "operation", "red_figure", "quantile", "log_query", "log_min_severity")
    for name_ in unused:
        changes[name_] = getattr(defaults, name_)
    checked = replace(spec, **changes)
    _channels_of(tenant_id, checked.channel_ids)
    return checked


def _channels_of(tenant_id: str, channel_ids: Sequence[int]) -> list[Channel]:
    found = {c.pk: c for c in Channel.objects.filter(tenant_id=_tenant_uuid(tenant_id), pk__in=channel_ids)}
    missing = [str(i) for i in channel_ids if i not in found]
    if missing:
        raise InvalidSpec(
            "channels",
            f"no channel {', '.join(missing)} in this tenant; list them at GET /api/v1/alerts/channels",
        )
    return [found[i] for i in channel_ids]


RULE_FIELDS = tuple(f.name for f in fields(RuleSpec) if f.name not in ("channel_ids",))


def rule_spec(rule: Rule) -> RuleSpec:
    """The spec of a stored rule (e.g. to change a few fields with ``dataclasses.replace``)."""
    values = {name: getattr(rule, name) for name in RULE_FIELDS}
    values["labels"] = dict(rule.labels or {})
    return RuleSpec(**values, channel_ids=tuple(c.pk for c in rule.channels.all()))


def _write_rule(rule: Rule, spec: RuleSpec, channels: list[Channel]) -> None:
    for name in RULE_FIELDS:
        setattr(rule, name, getattr(spec, name))
    rule.labels = dict(spec.labels)
    rule.updated_at = timezone.now()
    try:
        with transaction.atomic():
            rule.save()
    except IntegrityError:
        raise NameTaken(
            f"a rule named {spec.name!r} already exists in this tenant; choose another name"
        ) from None
    rule.channels.set(channels)


def _rules(tenant_id: str) -> QuerySet[Rule]:
    return (
        Rule.objects.filter(tenant_id=_tenant_uuid(tenant_id))
        .select_related("created_by")
        .prefetch_related("channels")
    )


def create_rule(tenant_id: str, spec: RuleSpec, created_by: int | None = None) -> Rule:
    checked = check_rule(tenant_id, spec)
    with transaction.atomic():
        rule = Rule(tenant_id=_tenant_uuid(tenant_id), created_by_id=created_by)
        _write_rule(rule, checked, _channels_of(tenant_id, checked.channel_ids))
    log.info(
        "alert rule created tenant=%s rule=%s kind=%s source=%s", tenant_id, rule.pk, rule.kind, rule.source
    )
    return get_rule(tenant_id, rule.pk)


def update_rule(tenant_id: str, rule_id: int, spec: RuleSpec) -> Rule:
    """Replaces the rule's configuration; its current state and history stay."""
    checked = check_rule(tenant_id, spec)
    with transaction.atomic():
        rule = _locked(_rules(tenant_id), rule_id, "rule")
        _write_rule(rule, checked, _channels_of(tenant_id, checked.channel_ids))
    log.info("alert rule updated tenant=%s rule=%s", tenant_id, rule_id)
    return get_rule(tenant_id, rule_id)


def patch_rule(tenant_id: str, rule_id: int, **changes: Any) -> Rule:
    """Changes some fields of a rule (names of ``RuleSpec``); the result is validated as a whole."""
    unknown = sorted(set(changes) - {f.name for f in fields(RuleSpec)})
    if unknown:
        raise InvalidSpec(unknown[0], "not a field of a rule")
    return update_rule(tenant_id, rule_id, replace(rule_spec(get_rule(tenant_id, rule_id)), **changes))


def set_rule_enabled(tenant_id: str, rule_id: int, enabled: bool) -> Rule:
    with transaction.atomic():
        rule = _locked(_rules(tenant_id), rule_id, "rule")
        rule.enabled = enabled
        rule.updated_at = timezone.now()
        rule.save(update_fields=["enabled", "updated_at"])
    log.info("alert rule %s tenant=%s rule=%s", "enabled" if enabled else "disabled", tenant_id, rule_id)
    return get_rule(tenant_id, rule_id)


def delete_rule(tenant_id: str, rule_id: int) -> None:
    """Deletes the rule with its state and history; its notifications stay in the delivery log."""
    deleted, _ = Rule.objects.filter(tenant_id=_tenant_uuid(tenant_id), pk=rule_id).delete()
    if not deleted:
        raise NotFound(f"no alert rule {rule_id} in this tenant")
    log.info("alert rule deleted tenant=%s rule=%s", tenant_id, rule_id)


def get_rule(tenant_id: str, rule_id: int) -> Rule:
    rule = _rules(tenant_id).filter(pk=rule_id).first()
    if rule is None:
        raise NotFound(f"no alert rule {rule_id} in this tenant")
    return rule


def list_rules(tenant_id: str, enabled: bool | None = None) -> list[Rule]:
    rules = _rules(tenant_id).order_by("name")
    if enabled is not None:
        rules = rules.filter(enabled=enabled)
    return list(rules)


def _locked(queryset: QuerySet[Any], pk: int, what: str) -> Any:
    found = queryset.select_for_update(of=("self",)).filter(pk=pk).first()
    if found is None:
        raise NotFound(f"no alert {what} {pk} in this tenant")
    return found


# --- channels ---------------------------------------------------------------------------------------


def _check_url(url: str, where: str, https_only: bool = False) -> str:
    url = url.strip()
    parts = urlsplit(url)
    schemes = ("https",) if https_only else ("http", "https")
    if parts.scheme not in schemes or not parts.hostname:
        raise InvalidSpec(
            where,
            f"{'an https' if https_only else 'an http(s)'} URL is required, e.g. "
            f"{'https://hooks.slack.com/services/…' if https_only else 'http://alertmanager:9093'}",
        )
    if len(url) > 1000:
        raise InvalidSpec(where, "at most 1000 characters")
    return url


def parse_recipients(text: str | Iterable[str]) -> tuple[str, ...]:
    """Email addresses from text (one per line or comma-separated) or a list; each checked."""
    items = re.split(r"[,\n;]", text) if isinstance(text, str) else list(text)
    out: list[str] = []
    for item in items:
        address = item.strip()
        if not address:
            continue
        try:
            validate_email(address)
        except ValidationError:
            raise InvalidSpec("recipients", f"{address!r} is not an email address") from None
        if address not in out:
            out.append(address)
    if len(out) > MAX_RECIPIENTS:
        raise InvalidSpec("recipients", f"at most {MAX_RECIPIENTS} addresses")
    return tuple(out)


def _check_mute_window(window: Any, n: int) -> dict[str, Any]:
    where = "mute_windows"
    if not isinstance(window, Mapping):
        raise InvalidSpec(
            where,
            f'window {n}: an object {{"weekdays": [0-6], "start": "HH:MM", "end": "HH:MM", '
            '"timezone": "Europe/Paris"}}',
        )
    unknown = sorted(set(window) - MUTE_WINDOW_KEYS)
    if unknown:
        raise InvalidSpec(
            where, f"window {n}: unknown key {unknown[0]!r}; use {', '.join(sorted(MUTE_WINDOW_KEYS))}"
        )
    weekdays = window.get("weekdays", list(range(7)))
    if (
        not isinstance(weekdays, list)
        or not weekdays
        or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in weekdays)
    ):
        raise InvalidSpec(where, f"window {n}: weekdays is a non-empty list of 0 (Monday) to 6 (Sunday)")
    bounds = {}
    for key in ("start", "end"):
        value = window.get(key)
        match = HH_MM.match(value) if isinstance(value, str) else None
        if match is None:
            raise InvalidSpec(where, f'window {n}: {key} is a time "HH:MM" (00:00 to 23:59), got {value!r}')
        bounds[key] = time(int(match.group(1)), int(match.group(2)))
    if bounds["start"] == bounds["end"]:
        raise InvalidSpec(where, f"window {n}: start and end are equal; the window would be empty")
    zone = window.get("timezone", "UTC")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidSpec(
            where, f"window {n}: {zone!r} is not an IANA time zone (e.g. Europe/Paris, UTC)"
        ) from None
    return {
        "weekdays": sorted(set(weekdays)),
        "start": window["start"],
        "end": window["end"],
        "timezone": zone,
    }


def check_channel(tenant_id: str, spec: ChannelSpec, current: Channel | None = None) -> ChannelSpec:
    """The spec as it will be stored, with ``url`` and ``secret`` resolved against ``current``."""
    name = _check_name(spec.name)
    _check_choice(spec.kind, "kind", ChannelKind.values)
    if current is not None and current.kind != spec.kind:
        # The stored secret and URL belong to the old kind: they must be given again.
        current = None
    url = spec.url if spec.url is not None else (current.url if current is not None else "")
    secret = spec.secret if spec.secret is not None else (current.secret if current is not None else "")
    url, secret = url.strip(), secret.strip()
    recipients: tuple[str, ...] = ()
    if spec.kind in (ChannelKind.ALERTMANAGER, ChannelKind.WEBHOOK):
        if not url:
            raise InvalidSpec("url", f"a {spec.kind} channel needs the URL to send to")
        url = _check_url(url, "url")
        if spec.kind == ChannelKind.ALERTMANAGER:
            secret = ""
    elif spec.kind == ChannelKind.SLACK:
        if not url:
            raise InvalidSpec(
                "url", "a slack channel needs the incoming webhook URL (https://hooks.slack.com/…)"
            )
        url = _check_url(url, "url", https_only=True)
        secret = ""
    elif spec.kind == ChannelKind.PAGERDUTY:
        if len(secret) != PAGERDUTY_KEY_LENGTH or not secret.isalnum():
            raise InvalidSpec(
                "secret",
                f"a pagerduty channel needs the integration (routing) key of an Events API v2 integration: "
                f"{PAGERDUTY_KEY_LENGTH} letters and digits",
            )
        url = _check_url(url, "url") if url else ""
    else:
        recipients = parse_recipients(spec.recipients)
        if not recipients:
            raise InvalidSpec("recipients", "an email channel needs at least one recipient address")
        url, secret = "", ""
    if len(secret) > 500:
        raise InvalidSpec("secret", "at most 500 characters")
    group_by = tuple(dict.fromkeys(_check_label_name(n, "group_by") for n in spec.group_by))
    _check_range(spec.group_wait_seconds, "group_wait_seconds", 0, MAX_GROUP_WAIT_SECONDS)
    _check_range(spec.repeat_interval_seconds, "repeat_interval_seconds", 0, MAX_REPEAT_INTERVAL_SECONDS)
    _check_range(spec.max_attempts, "max_attempts", 1, MAX_ATTEMPTS)
    mute_windows = tuple(_check_mute_window(w, n) for n, w in enumerate(spec.mute_windows, 1))
    return replace(
        spec,
        name=name,
        url=url,
        secret=secret,
        recipients=recipients,
        group_by=group_by,
        mute_windows=mute_windows,
    )


CHANNEL_FIELDS = (
    "name",
    "kind",
    "url",
    "secret",
    "group_wait_seconds",
    "repeat_interval_seconds",
    "send_resolved",
    "max_attempts",
    "enabled",
)


def channel_spec(channel: Channel) -> ChannelSpec:
    return ChannelSpec(
        **{name: getattr(channel, name) for name in CHANNEL_FIELDS},
        recipients=parse_recipients(channel.recipients) if channel.recipients else (),
        group_by=tuple(channel.group_by or ()),
        mute_windows=tuple(channel.mute_windows or ()),
    )


def _write_channel(channel: Channel, spec: ChannelSpec) -> None:
    for name in CHANNEL_FIELDS:
        setattr(channel, name, getattr(spec, name))
    channel.recipients = "\n".join(spec.recipients)
    channel.group_by = list(spec.group_by)
    channel.mute_windows = [dict(w) for w in spec.mute_windows]
    try:
        with transaction.atomic():
            channel.save()
    except IntegrityError:
        raise NameTaken(
            f"a channel named {spec.name!r} already exists in this tenant; choose another name"
        ) from None


def _channels(tenant_id: str) -> QuerySet[Channel]:
    return Channel.objects.filter(tenant_id=_tenant_uuid(tenant_id))


def create_channel(tenant_id: str, spec: ChannelSpec) -> Channel:
    checked = check_channel(tenant_id, spec)
    channel = Channel(tenant_id=_tenant_uuid(tenant_id))
    _write_channel(channel, checked)
    log.info("alert channel created tenant=%s channel=%s kind=%s", tenant_id, channel.pk, channel.kind)
    return channel


def update_channel(tenant_id: str, channel_id: int, spec: ChannelSpec) -> Channel:
    with transaction.atomic():
        channel = _locked(_channels(tenant_id), channel_id, "channel")
        _write_channel(channel, check_channel(tenant_id, spec, channel))
    log.info("alert channel updated tenant=%s channel=%s", tenant_id, channel_id)
    return channel


def patch_channel(tenant_id: str, channel_id: int, **changes: Any) -> Channel:
    """Changes some fields (names of ``ChannelSpec``); url and secret stay unless given."""
    unknown = sorted(set(changes) - {f.name for f in fields(ChannelSpec)})
    if unknown:
        raise InvalidSpec(unknown[0], "not a field of a channel")
    current = replace(channel_spec(get_channel(tenant_id, channel_id)), url=None, secret=None)
    return update_channel(tenant_id, channel_id, replace(current, **changes))


def set_channel_enabled(tenant_id: str, channel_id: int, enabled: bool) -> Channel:
    with transaction.atomic():
        channel = _locked(_channels(tenant_id), channel_id, "channel")
        channel.enabled = enabled
        channel.save(update_fields=["enabled"])
    log.info(
        "alert channel %s tenant=%s channel=%s", "enabled" if enabled else "disabled", tenant_id, channel_id
    )
    return channel


def delete_channel(tenant_id: str, channel_id: int) -> None:
    """Deletes the channel: rules stop sending to it, and its delivery log goes with it (disable it instead
    to keep the log)."""
    deleted, _ = _channels(tenant_id).filter(pk=channel_id).delete()
    if not deleted:
        raise NotFound(f"no alert channel {channel_id} in this tenant")
    log.info("alert channel deleted tenant=%s channel=%s", tenant_id, channel_id)


def get_channel(tenant_id: str, channel_id: int) -> Channel:
    channel = _channels(tenant_id).filter(pk=channel_id).first()
    if channel is None:
        raise NotFound(f"no alert channel {channel_id} in this tenant")
    return channel


def list_channels(tenant_id: str) -> list[Channel]:
    return list(_channels(tenant_id).order_by("name"))


# --- silences ---------------------------------------------------------------------------------------


def matchers_from_json(items: Any) -> tuple[Matcher, ...]:
    """Matchers from their JSON form (a list of objects, Alertmanager's shape)."""
    if not isinstance(items, list):
        raise InvalidSpec("matchers", 'a list of {"name", "value", "is_regex", "is_equal"} objects')
    out = []
    for n, item in enumerate(items, 1):
        if not isinstance(item, Mapping) or not {"name", "value"} <= set(item) or set(item) - MATCHER_KEYS:
            raise InvalidSpec(
                "matchers",
                f'matcher {n}: an object with "name", "value" and optionally "is_regex", "is_equal"',
            )
        if not all(isinstance(item.get(k, False), bool) for k in ("is_regex", "is_equal")):
            raise InvalidSpec("matchers", f"matcher {n}: is_regex and is_equal are true or false")
        out.append(
            Matcher(
                name=item["name"],
                value=item["value"] if isinstance(item["value"], str) else str(item["value"]),
                is_regex=item.get("is_regex", False),
                is_equal=item.get("is_equal", True),
            )
        )
    return tuple(out)


def matches(matcher: Matcher, labels: Mapping[str, str]) -> bool:
    """Alertmanager's semantics (the dispatcher's matcher): a missing label is the empty string; regular
    expressions are anchored."""
    return matcher_matches(matcher.as_json(), labels)


def check_silence(spec: SilenceSpec, now: datetime | None = None) -> SilenceSpec:
    now = now or timezone.now()
    if not spec.matchers:
        raise InvalidSpec("matchers", "at least one matcher is required (a silence of everything is refused)")
    if len(spec.matchers) > MAX_MATCHERS:
        raise InvalidSpec("matchers", f"at most {MAX_MATCHERS} matchers")
    for n, m in enumerate(spec.matchers, 1):
        _check_label_name(m.name, "matchers")
        if len(m.value) > 1000:
            raise InvalidSpec("matchers", f"matcher {n}: the value is at most 1000 characters")
        if m.is_regex:
            try:
                re.compile(m.value)
            except re.error as exc:
                raise InvalidSpec(
                    "matchers", f"matcher {n}: {m.value!r} is not a regular expression: {exc}"
                ) from None
    if all(matches(m, {}) for m in spec.matchers):
        raise InvalidSpec(
            "matchers",
            "every matcher also matches alerts without the label, so the silence would mute everything; "
            "add a matcher that needs a value (e.g. service=checkout)",
        )
    starts_at = spec.starts_at or now
    for name, moment in (("starts_at", starts_at), ("ends_at", spec.ends_at)):
        if timezone.is_naive(moment):
            raise InvalidSpec(name, "a time with a UTC offset is required (e.g. 2030-01-01T12:00:00Z)")
    if spec.ends_at <= starts_at:
        raise InvalidSpec("ends_at", "must be after starts_at")
    if spec.ends_at <= now:
        raise InvalidSpec("ends_at", "is in the past; a silence must end in the future")
    return replace(spec, starts_at=starts_at, comment=spec.comment.strip())


def create_silence(tenant_id: str, spec: SilenceSpec, created_by: int | None = None) -> Silence:
    checked = check_silence(spec)
    silence = Silence.objects.create(
        tenant_id=_tenant_uuid(tenant_id),
        matchers=[m.as_json() for m in checked.matchers],
        starts_at=checked.starts_at or timezone.now(),
        ends_at=checked.ends_at,
        comment=checked.comment,
        created_by_id=created_by,
    )
    log.info("alert silence created tenant=%s silence=%s ends_at=%s", tenant_id, silence.pk, silence.ends_at)
    return silence


def update_silence(tenant_id: str, silence_id: int, spec: SilenceSpec) -> Silence:
    checked = check_silence(spec)
    with transaction.atomic():
        silence = _locked(Silence.objects.filter(tenant_id=_tenant_uuid(tenant_id)), silence_id, "silence")
        silence.matchers = [m.as_json() for m in checked.matchers]
        silence.starts_at = checked.starts_at or timezone.now()
        silence.ends_at = checked.ends_at
        silence.comment = checked.comment
        silence.save()
    log.info("alert silence updated tenant=%s silence=%s", tenant_id, silence_id)
    return silence


def expire_silence(tenant_id: str, silence_id: int, now: datetime | None = None) -> Silence:
    """Ends the silence now (it stays listed as expired); one that has not started ends before starting."""
    now = now or timezone.now()
    with transaction.atomic():
        silence = _locked(Silence.objects.filter(tenant_id=_tenant_uuid(tenant_id)), silence_id, "silence")
        if silence.ends_at > now:
            silence.ends_at = now
            if silence.starts_at > now:
                silence.starts_at = now
            silence.save(update_fields=["starts_at", "ends_at"])
    log.info("alert silence expired tenant=%s silence=%s", tenant_id, silence_id)
    return silence


def silence_status(silence: Silence, now: datetime | None = None) -> str:
    now = now or timezone.now()
    if silence.ends_at <= now:
        return "expired"
    return "active" if silence.starts_at <= now else "pending"


def get_silence(tenant_id: str, silence_id: int) -> Silence:
    silence = Silence.objects.filter(tenant_id=_tenant_uuid(tenant_id), pk=silence_id).first()
    if silence is None:
        raise NotFound(f"no alert silence {silence_id} in this tenant")
    return silence


def list_silences(tenant_id: str, status: str | None = None, now: datetime | None = None) -> list[Silence]:
    now = now or timezone.now()
    silences = Silence.objects.filter(tenant_id=_tenant_uuid(tenant_id))
    if status == "expired":
        silences = silences.filter(ends_at__lte=now)
    elif status == "active":
        silences = silences.filter(starts_at__lte=now, ends_at__gt=now)
    elif status == "pending":
        silences = silences.filter(starts_at__gt=now)
    return list(silences.order_by("-ends_at", "-id")[:MAX_LIST])


# --- reads for the API ------------------------------------------------------------------------------


def current_alerts(tenant_id: str, state: str | None = None, rule_id: int | None = None) -> list[AlertState]:
    """Alerts that are firing or pending now (or only one of the two), most recently changed first."""
    wanted = [state] if state else [State.FIRING, State.PENDING]
    states = AlertState.objects.filter(tenant_id=_tenant_uuid(tenant_id), state__in=wanted)
    if rule_id is not None:
        states = states.filter(rule_id=rule_id)
    return list(states.select_related("rule").order_by("-changed_at", "-id")[:MAX_LIST])


def alert_events(
    tenant_id: str,
    rule_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    to_state: str | None = None,
    limit: int = 100,
) -> list[AlertEvent]:
    """State transitions, newest first."""
    events = AlertEvent.objects.filter(tenant_id=_tenant_uuid(tenant_id))
    if rule_id is not None:
        events = events.filter(rule_id=rule_id)
    if since is not None:
        events = events.filter(at__gte=since)
    if until is not None:
        events = events.filter(at__lt=until)
    if to_state is not None:
        events = events.filter(to_state=to_state)
    return list(events.select_related("rule").order_by("-at", "-id")[: max(1, min(limit, MAX_LIST))])


def notifications(
    tenant_id: str,
    status: str | None = None,
    channel_id: int | None = None,
    rule_id: int | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[Notification]:
    """The delivery log, newest first, each notification with its attempts."""
    found = Notification.objects.filter(tenant_id=_tenant_uuid(tenant_id))
    if status is not None:
        found = found.filter(status=status)
    if channel_id is not None:
        found = found.filter(channel_id=channel_id)
    if rule_id is not None:
        found = found.filter(rule_id=rule_id)
    if since is not None:
        found = found.filter(created_at__gte=since)
    found = found.select_related("channel", "rule").prefetch_related(
        Prefetch("delivery_attempts", queryset=DeliveryAttempt.objects.order_by("at", "id")),
        Prefetch("events", queryset=AlertEvent.objects.only("id")),
    )
    return list(found.order_by("-created_at", "-id")[: max(1, min(limit, MAX_LIST))])


NOTIFICATION_STATUSES: tuple[str, ...] = tuple(NotificationStatus.values)
