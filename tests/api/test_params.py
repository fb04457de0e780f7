from __future__ import annotations

import pytest

from ollystack.telemetry.api.params import parse_severity, parse_time_ns

S = 1_000_000_000


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1738324800", 1738324800 * S),
        ("1738324800.25", 1738324800 * S + 250_000_000),
        ("0", 0),
        ("2025-01-31T12:00:00Z", 1738324800 * S),
        ("2025-01-31T12:00:00.5Z", 1738324800 * S + 500_000_000),
        ("2025-01-31T14:00:00+02:00", 1738324800 * S),
        ("2025-01-31T14:00:00 02:00", 1738324800 * S),  # '+' decoded as a space in a query string
        ("2025-01-31T12:00:00", 1738324800 * S),  # no offset: UTC
    ],
)
def test_parse_time(raw, expected):
    assert parse_time_ns(raw) == expected


@pytest.mark.parametrize("raw", ["", "soon", "-5", "nan", "2025-13-01T00:00:00Z", "1738324800000"])
def test_parse_time_rejects(raw):
    with pytest.raises(ValueError, match=r"RFC 3339|Unix seconds"):
        parse_time_ns(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1", 1),
        ("24", 24),
        ("info", 9),
        ("WARN", 13),
        ("warning", 13),
        ("ERROR", 17),
        ("error3", 19),
        ("FATAL4", 24),
        ("SEVERITY_NUMBER_DEBUG", 5),
    ],
)
def test_parse_severity(raw, expected):
    assert parse_severity(raw) == expected


@pytest.mark.parametrize("raw", ["0", "25", "LOUD", "INFO5", ""])
def test_parse_severity_rejects(raw):
    with pytest.raises(ValueError, match=r"severity|out of range"):
        parse_severity(raw)
