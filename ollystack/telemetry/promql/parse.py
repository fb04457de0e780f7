"""Parsing PromQL with promql-parser (the Rust parser's Python bindings) and Prometheus API parameters."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta

import promql_parser

from ollystack.telemetry.api.params import parse_time_ns
from ollystack.telemetry.promql.errors import BadData

# Functions Prometheus 2.x knows that the parser does not: recognised, then refused by name.
_LEGACY_FUNCTIONS = {
    "holt_winters": [
        promql_parser.ValueType.Matrix,
        promql_parser.ValueType.Scalar,
        promql_parser.ValueType.Scalar,
    ],
}
_registered = False
_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def _register_legacy() -> None:
    global _registered
    if _registered:
        return
    promql_parser.register_extra_functions(
        [
            promql_parser.Function(
                name=name,
                arg_types=args,
                variadic=0,
                return_type=promql_parser.ValueType.Vector,
                experimental=False,
            )
            for name, args in _LEGACY_FUNCTIONS.items()
        ]
    )
    _registered = True


def parse_query(text: str) -> promql_parser.Expr:
    """The AST of a PromQL expression; a syntax error is ``bad_data`` with the parser's message."""
    _register_legacy()
    if not text or not text.strip():
        raise BadData('invalid parameter "query": 1:1: parse error: no expression found in input')
    try:
        return promql_parser.parse(text)
    except ValueError as exc:
        raise BadData(f'invalid parameter "query": parse error: {exc}') from None


def to_ms(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def parse_duration_ms(raw: str, name: str) -> int:
    """A Prometheus duration parameter: float seconds (``15``, ``0.5``) or a duration (``1m30s``)."""
    text = raw.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        if not math.isfinite(seconds) or seconds * 1000 > 2**62:
            raise BadData(
                f'invalid parameter "{name}": cannot parse "{raw}" to a valid duration. It overflows int64'
            )
        return round(seconds * 1000)
    if not _DURATION.match(text):
        raise BadData(f'invalid parameter "{name}": cannot parse "{raw}" to a valid duration')
    return to_ms(promql_parser.parse_duration(text))


def parse_time_ms(raw: str, name: str) -> int:
    """A Prometheus time parameter: RFC 3339 or Unix seconds (fractions allowed), as milliseconds."""
    try:
        return parse_time_ns(raw) // 1_000_000
    except ValueError:
        try:
            return round(float(raw) * 1000)  # Prometheus also takes times before 1970 and far future
        except ValueError:
            raise BadData(f'invalid parameter "{name}": cannot parse "{raw}" to a valid timestamp') from None


def datetime_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)
