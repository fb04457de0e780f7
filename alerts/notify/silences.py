"""Silences (label matchers, Alertmanager semantics) and channel mute windows (recurring quiet times)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerts.models import Silence


@lru_cache(maxsize=1024)
def _pattern(expression: str) -> re.Pattern[str]:
    return re.compile(expression)


def matcher_matches(matcher: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Alertmanager's matcher: ``=``, ``!=``, ``=~``, ``!~``; regexes are anchored; a missing label is ""."""
    value = labels.get(str(matcher.get("name", "")), "")
    expected = str(matcher.get("value", ""))
    if matcher.get("is_regex", False):
        try:
            found = _pattern(expected).fullmatch(value) is not None
        except re.error:
            found = False
    else:
        found = value == expected
    return found if matcher.get("is_equal", True) else not found


def silence_matches(matchers: Sequence[Mapping[str, Any]], labels: Mapping[str, str]) -> bool:
    """A silence applies when every one of its matchers matches (a silence without matchers matches none)."""
    return bool(matchers) and all(matcher_matches(m, labels) for m in matchers)


def active_silences(tenant_id: Any, at: datetime) -> list[Silence]:
    return list(Silence.objects.filter(tenant_id=tenant_id, starts_at__lte=at, ends_at__gt=at))


def silenced_by(silences: Iterable[Silence], labels: Mapping[str, str]) -> Silence | None:
    for silence in silences:
        if silence_matches(silence.matchers or [], labels):
            return silence
    return None


def _clock(text: str) -> time | None:
    hours, _, minutes = str(text).partition(":")
    h, m = int(hours), int(minutes or 0)
    if (h, m) == (24, 0):
        return None  # end of day
    return time(h, m)


def in_mute_window(windows: Sequence[Mapping[str, Any]], at: datetime) -> Mapping[str, Any] | None:
    """The first window ``at`` falls in, or None.

    A window is ``{"weekdays": [0..6] (Monday 0; empty or missing: every day), "start": "HH:MM",
    "end": "HH:MM" ("24:00" for the end of the day), "timezone": "Europe/Paris" (default UTC)}``. An end
    before the start crosses midnight; the weekdays then name the day the window starts.
    """
    for window in windows or []:
        try:
            zone = ZoneInfo(str(window.get("timezone") or "UTC"))
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        local = at.astimezone(zone)
        weekdays = set(window.get("weekdays") or range(7))
        start = _clock(window.get("start", "00:00")) or time(0, 0)
        end = _clock(window.get("end", "24:00"))
        now = local.time()
        if end is None or start < end:
            if local.weekday() in weekdays and now >= start and (end is None or now < end):
                return window
        elif start > end:  # crosses midnight
            if local.weekday() in weekdays and now >= start:
                return window
            if (local.weekday() - 1) % 7 in weekdays and now < end:
                return window
    return None
