"""What every notifier returns, and the one HTTP call they share."""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from django.conf import settings


@dataclass(frozen=True)
class SendResult:
    """The outcome of one delivery attempt (what a DeliveryAttempt records)."""

    ok: bool
    status_code: int | None = None
    error: str = ""
    duration_ms: float = 0.0
    permanent: bool = False  # retrying cannot help (a 4xx other than 408/429, a bad configuration)
    retry_after: float | None = None  # seconds the target asked us to wait (429/503 Retry-After)


class ConfigurationError(Exception):
    """The channel cannot be sent to as configured (the message says what to fix)."""


def timeout_seconds() -> float:
    return float(getattr(settings, "OLLYSTACK_ALERT_DELIVERY_TIMEOUT_SECONDS", 5))


def safe_url(url: str) -> str:
    """The URL without path, query or credentials, for errors and logs (Slack URLs are secrets)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (now if now is not None else datetime.now(UTC).timestamp()))


def post_json(
    client: httpx.Client,
    url: str,
    body: Any,
    headers: dict[str, str] | None = None,
    *,
    ok_statuses: tuple[int, ...] = (),
) -> SendResult:
    """POST ``body`` (already bytes, or JSON-serialisable) and classify the answer.

    2xx (or ``ok_statuses``) is success; 408, 429 and 5xx are retried (honouring Retry-After); any
    other 4xx is permanent; connection errors and timeouts are retried.
    """
    content = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
    sent_headers = {"Content-Type": "application/json", "User-Agent": "OllyStack-Alerts/1", **(headers or {})}
    started = time.perf_counter()
    target = safe_url(url)
    try:
        response = client.post(url, content=content, headers=sent_headers, timeout=timeout_seconds())
    except httpx.TimeoutException:
        return SendResult(
            False, None, f"{target} did not answer within {timeout_seconds():g} s", _ms(started)
        )
    except httpx.HTTPError as error:
        reason = str(error) or type(error).__name__
        return SendResult(False, None, f"cannot reach {target}: {reason}", _ms(started))
    duration = _ms(started)
    code = response.status_code
    if 200 <= code < 300 or code in ok_statuses:
        return SendResult(True, code, "", duration)
    text = response.text.strip().replace("\n", " ")[:500]
    problem = f"{target} answered HTTP {code}" + (f": {text}" if text else "")
    retryable = code in (408, 429) or code >= 500
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if code in (429, 503) else None
    return SendResult(False, code, problem, duration, permanent=not retryable, retry_after=retry_after)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
