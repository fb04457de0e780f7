"""Query-parameter parsing for the read API: times, severities, ids, limits."""

from __future__ import annotations

import re
import time
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
        return attrs


class LogParams(TimeRangeParams):
    service = serializers.CharField(required=False, help_text="Only records of this service.name.")
    severity = SeverityField(
        required=False,
        help_text="Minimum severity: a number 1-24 or a name (TRACE, DEBUG, INFO, WARN, ERROR, FATAL).",
    )
    text = serializers.CharField(required=False, help_text="Substring the log body must contain.")
    trace_id = TraceIdField(required=False, help_text="Only records of this trace (32 hex characters).")
    limit = serializers.IntegerField(
        required=False, default=100, min_value=1, max_value=1000, help_text="Page size (1-1000)."
    )
    cursor = serializers.CharField(
        required=False, help_text="next_cursor from the previous page, to fetch older records."
    )


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
