"""Query-parameter parsing for the read API: times, severities, ids, limits."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

NS_PER_S = 1_000_000_000
DEFAULT_RANGE = timedelta(hours=1)
# Unix seconds beyond this are almost certainly milliseconds or nanoseconds (year 5138).
MAX_UNIX_SECONDS = Decimal(100_000_000_000)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# "+02:00" sent unencoded in a query string arrives as " 02:00".
_LOST_PLUS = re.compile(r"^(.*\d)\s(\d{2}(?::?\d{2})?)$")
HEX_ID_32 = re.compile(r"^[0-9a-fA-F]{32}$")

SEVERITY_NAMES = {
    "TRACE": 1,
    "DEBUG": 5,
    "INFO": 9,
    "WARN": 13,
    "WARNING": 13,
    "ERROR": 17,
    "FATAL": 21,
    "CRITICAL": 21,
}
_SEVERITY_RE = re.compile(r"^(?:SEVERITY_NUMBER_)?([A-Z]+)([1-4])?$")

ATTRIBUTE_PREFIX = "attr."
MAX_ATTRIBUTE_FILTERS = 10
DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": NS_PER_S,
    "m": 60 * NS_PER_S,
    "h": 3600 * NS_PER_S,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h)\s*$")
DURATION_HELP = "send a number with a unit: 250ms, 1.5s, 800us, 2m (units ns, us, ms, s, m, h)"

TIME_HELP = "use RFC 3339 (2025-01-31T12:00:00Z) or Unix seconds (1738324800 or 1738324800.25)"


def parse_time_ns(raw: str) -> int:
    """Nanoseconds since the epoch from RFC 3339 or Unix seconds; ``ValueError`` says what to send."""
    text = raw.strip()
    try:
        number: Decimal | None = Decimal(text)
    except InvalidOperation:
        number = None
    if number is not None:
        if not number.is_finite() or number < 0:
            raise ValueError(f"{raw!r} is not a time; {TIME_HELP}")
        if number >= MAX_UNIX_SECONDS:
            raise ValueError(
                f"{raw!r} looks like milliseconds or nanoseconds; send Unix seconds (e.g. 1738324800.25)"
            )
        return int(number * NS_PER_S)
    lost_plus = _LOST_PLUS.match(text)
    if lost_plus and "T" in text.upper():
        text = f"{lost_plus.group(1)}+{lost_plus.group(2)}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{raw!r} is not a time; {TIME_HELP}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def parse_severity(raw: str) -> int:
    """A severity number (1-24) or a name (TRACE, DEBUG, INFO, WARN, ERROR, FATAL, optionally 2-4)."""
    text = raw.strip().upper()
    if text.isdigit():
        number = int(text)
        if 1 <= number <= 24:
            return number
        raise ValueError(f"{raw!r} is out of range; severity numbers go from 1 (TRACE) to 24 (FATAL4)")
    match = _SEVERITY_RE.match(text)
    if match and match.group(1) in SEVERITY_NAMES:
        return SEVERITY_NAMES[match.group(1)] + int(match.group(2) or 1) - 1
    raise ValueError(
        f"{raw!r} is not a severity; use a number 1-24 or one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL"
    )


@extend_schema_field(OpenApiTypes.STR)
class TimeField(serializers.Field):
    """RFC 3339 or Unix seconds in, nanoseconds since the epoch out."""

    def to_internal_value(self, data: Any) -> int:
        try:
            return parse_time_ns(str(data))
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value: Any) -> Any:
        return value


def parse_duration_ns(raw: str) -> int:
    """Nanoseconds from a duration with a unit (``250ms``, ``1.5s``); a bare number is refused, because
    whether it means milliseconds or seconds is a guess."""
    match = _DURATION.match(raw)
    if not match:
        raise ValueError(f"{raw!r} is not a duration; {DURATION_HELP}")
    return int(Decimal(match.group(1)) * DURATION_UNITS[match.group(2)])


@extend_schema_field(OpenApiTypes.STR)
class DurationField(serializers.Field):
    """``250ms``, ``1.5s``, ``800us`` in, nanoseconds out."""

    def to_internal_value(self, data: Any) -> int:
        try:
            return parse_duration_ns(str(data))
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value: Any) -> Any:
        return value


@extend_schema_field(OpenApiTypes.STR)
class SeverityField(serializers.Field):
    def to_internal_value(self, data: Any) -> int:
        try:
            return parse_severity(str(data))
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value: Any) -> Any:
        return value


class TraceIdField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        text = str(super().to_internal_value(data)).strip()
        if not HEX_ID_32.match(text):
            raise serializers.ValidationError(
                f"{text!r} is not a trace id; send 32 hexadecimal characters (16 bytes)"
            )
        return text.lower()


@dataclass(frozen=True)
class Window:
    """A resolved time range, and the range as asked: ``None`` ends mean "relative to now". The cache key
    uses the range as asked, so that "the last hour" asked again a second later is the same question."""

    start_ns: int
    end_ns: int
    asked_start_ns: int | None = None
    asked_end_ns: int | None = None

    def key(self) -> dict[str, int | None]:
        return {"start_ns": self.asked_start_ns, "end_ns": self.asked_end_ns}

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / NS_PER_S


class TimeRangeParams(serializers.Serializer):
    start = TimeField(
        required=False,
        help_text="Start of the range, inclusive: RFC 3339 or Unix seconds. Default: one hour before end.",
    )
    end = TimeField(required=False, help_text="End of the range: RFC 3339 or Unix seconds. Default: now.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        default_range_ns = int(DEFAULT_RANGE.total_seconds()) * NS_PER_S
        end_ns = attrs.get("end")
        start_ns = attrs.get("start")
        if end_ns is None:
            end_ns = time.time_ns()
            if start_ns is not None and start_ns > end_ns:
                raise serializers.ValidationError(
                    {"start": "is in the future; give an end as well, or a start in the past"}
                )
        if start_ns is None:
            start_ns = end_ns - default_range_ns
        if end_ns < start_ns:
            raise serializers.ValidationError(
                {"end": "is before start; swap them or give an end after the start"}
            )
        attrs["start_ns"] = start_ns
        attrs["end_ns"] = end_ns
        attrs["window"] = Window(start_ns, end_ns, attrs.get("start"), attrs.get("end"))
        return attrs


class ServicesParams(TimeRangeParams):
    service = serializers.CharField(required=False, help_text="Only this service.name (one row, or none).")


class LogParams(TimeRangeParams):
    service = serializers.CharField(required=False, help_text="Only records of this service.name.")
    severity = SeverityField(
        required=False,
        help_text="Minimum severity: a number 1-24 or a name (TRACE, DEBUG, INFO, WARN, ERROR, FATAL).",
    )
    text = serializers.CharField(
        required=False,
        help_text="Words the log body must contain, each as a whole word (and the text as written, "
        "when it is more than one word).",
    )
    trace_id = TraceIdField(required=False, help_text="Only records of this trace (32 hex characters).")
    limit = serializers.IntegerField(
        required=False, default=100, min_value=1, max_value=1000, help_text="Page size (1-1000)."
    )
    cursor = serializers.CharField(
        required=False, help_text="next_cursor from the previous page, to fetch older records."
    )


class TraceSearchParams(TimeRangeParams):
    service = serializers.CharField(required=False, help_text="Traces with a span of this service.name.")
    operation = serializers.CharField(
        required=False, help_text="Traces with a span of this name (with service: that service's span)."
    )
    min_duration = DurationField(
        required=False, help_text="The matching span lasts at least this long: 250ms, 1.5s, 800us."
    )
    max_duration = DurationField(required=False, help_text="The matching span lasts at most this long.")
    status = serializers.ChoiceField(
        choices=["error", "ok"],
        required=False,
        help_text="error: the matching span's status is ERROR; ok: anything else.",
    )
    limit = serializers.IntegerField(
        required=False, default=20, min_value=1, max_value=1000, help_text="Most traces returned (1-1000)."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        low, high = attrs.get("min_duration"), attrs.get("max_duration")
        if low is not None and high is not None and high < low:
            raise serializers.ValidationError({"max_duration": "is shorter than min_duration"})
        return attrs


class ErrorParams(TimeRangeParams):
    service = serializers.CharField(required=False, help_text="Only errors of this service.name.")
    limit = serializers.IntegerField(
        required=False, default=100, min_value=1, max_value=1000, help_text="Most error groups (1-1000)."
    )


class MetricLabelParams(TimeRangeParams):
    name = serializers.CharField(required=False, help_text="Only labels of this metric.")


class MetricParams(TimeRangeParams):
    name = serializers.CharField(required=False, help_text="Metric name.")
    service = serializers.CharField(required=False, help_text="Only points of this service.name.")
    limit = serializers.IntegerField(
        required=False, default=1000, min_value=1, max_value=10000, help_text="Most points returned."
    )


class TenantParam(serializers.Serializer):
    tenant = serializers.CharField(
        required=False,
        help_text="For signed-in users who belong to several tenants. API keys always use their own.",
    )


class ErrorBody(serializers.Serializer):
    error = serializers.CharField()


def attribute_filters(query: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """``attr.<key>=<value>`` query parameters as (key, value) pairs, sorted by key.

    ``query`` is a QueryDict (or a plain mapping of lists); a key given twice is refused rather than
    guessed at (both values cannot match one attribute).
    """
    found: list[tuple[str, str]] = []
    for name in sorted(k for k in query if k.startswith(ATTRIBUTE_PREFIX)):
        key = name[len(ATTRIBUTE_PREFIX) :]
        values = query.getlist(name) if hasattr(query, "getlist") else [query[name]]
        if not key:
            raise serializers.ValidationError(
                {name: "names no attribute; send attr.<key>=<value>, e.g. attr.http.route=/checkout"}
            )
        if len(values) > 1:
            raise serializers.ValidationError({name: "given more than once; an attribute has one value"})
        found.append((key, str(values[0])))
    if len(found) > MAX_ATTRIBUTE_FILTERS:
        raise serializers.ValidationError(
            {ATTRIBUTE_PREFIX + "*": f"{len(found)} attribute filters; at most {MAX_ATTRIBUTE_FILTERS}"}
        )
    return tuple(found)


def attribute_names(query: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``attr.*`` parameter names of a query (what ``parse`` must accept besides the serializer's)."""
    return tuple(k for k in query if k.startswith(ATTRIBUTE_PREFIX))


def validate(serializer_class: type[serializers.Serializer], data: Mapping[str, Any]) -> dict[str, Any]:
    """Validated parameters from a plain mapping (GraphQL arguments): the same rules as query strings."""
    serializer = serializer_class(data={k: v for k, v in data.items() if v is not None and v != ""})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
