"""A short-lived cache of read results, per tenant and query.

Dashboards, the service overview and Grafana ask the same questions again every few seconds; answering a
repeat from memory spares ClickHouse the work. Entries live in the Django cache alias ``query``
(in-process in the embedded profile, Redis in production, so every web replica shares them).

Freshness: new data becomes visible about every ``OLLYSTACK_BATCH_MAX_DELAY_MS`` (the ingest batch
cadence), so an entry lives ``OLLYSTACK_QUERY_CACHE_SECONDS`` (default 5). A query whose range ended more
than ``OLLYSTACK_QUERY_CACHE_SETTLED_AFTER_SECONDS`` ago (default 300) only changes when late data or a WAL
replay arrives, so it lives ``OLLYSTACK_QUERY_CACHE_SETTLED_SECONDS`` (default 60). A TTL of 0 turns the
cache off. If the cache store fails, the query runs uncached (reads never fail because of the cache).

Every lookup is counted in ``ollystack_query_cache_requests_total{kind, result}`` (``hit``, ``miss``,
``error``) in the process's self-metrics registry (``/metrics`` on ``OLLYSTACK_METRICS_PORT``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import caches
from prometheus_client import Counter

from ingest.metrics import REGISTRY

T = TypeVar("T")
log = logging.getLogger(__name__)

CACHE_ALIAS = "query"
KEY_VERSION = 1
NS_PER_S = 1_000_000_000

CACHE_REQUESTS = Counter(
    "ollystack_query_cache_requests",
    "Read queries looked up in the query cache, by kind of query and result (hit, miss, error: the cache "
    "store failed and the query ran uncached).",
    ["kind", "result"],
    registry=REGISTRY,
)

_MISSING = object()


def _canonical(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__type__": type(value).__name__, **dataclasses.asdict(value)}
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot use a {type(value).__name__} in a query cache key; pass plain values")


def _key(tenant_id: str, kind: str, params: Mapping[str, object]) -> str:
    """The same key for the same question of the same tenant, whatever the order of the parameters."""
    text = json.dumps(
        [tenant_id, kind, dict(params)],
        sort_keys=True,
        separators=(",", ":"),
        default=_canonical,
        ensure_ascii=False,
    )
    digest = hashlib.sha256(text.encode()).hexdigest()
    return f"q{KEY_VERSION}:{kind}:{digest}"


def default_ttl(params: Mapping[str, object], now_ns: int | None = None) -> float:
    """Seconds an entry lives: longer when the query's ``end_ns`` lies far enough in the past that its
    data has settled. A missing or ``None`` ``end_ns`` means "until now"."""
    end_ns = params.get("end_ns")
    fresh = float(settings.OLLYSTACK_QUERY_CACHE_SECONDS)
    if isinstance(end_ns, int) and not isinstance(end_ns, bool) and fresh > 0:
        now_ns = time.time_ns() if now_ns is None else now_ns
        if now_ns - end_ns > settings.OLLYSTACK_QUERY_CACHE_SETTLED_AFTER_SECONDS * NS_PER_S:
            return max(fresh, float(settings.OLLYSTACK_QUERY_CACHE_SETTLED_SECONDS))
    return fresh


def cached_read(
    tenant_id: str,
    kind: str,
    params: Mapping[str, object],
    compute: Callable[[], T],
    ttl: float | None = None,
) -> T:
    """``compute()``'s result for this tenant and query, from the cache when a fresh one is there.

    ``kind`` names the query (``"services.red"``); ``params`` must hold every input that changes the
    result (JSON-able values or dataclasses) — the tenant is always part of the key. The result must be
    picklable (Redis stores pickles); callers get a copy, never a shared object.
    """
    if not tenant_id:
        raise ValueError("a tenant id is required to cache a read")
    seconds = default_ttl(params) if ttl is None else float(ttl)
    if seconds <= 0:
        return compute()
    key = _key(tenant_id, kind, params)
    store = caches[CACHE_ALIAS]
    try:
        found = store.get(key, _MISSING)
    except Exception as exc:
        log.warning("query cache get failed kind=%s tenant=%s error=%r", kind, tenant_id, exc)
        CACHE_REQUESTS.labels(kind, "error").inc()
        return compute()
    if found is not _MISSING:
        CACHE_REQUESTS.labels(kind, "hit").inc()
        return found
    CACHE_REQUESTS.labels(kind, "miss").inc()
    value = compute()
    try:
        store.set(key, value, seconds)
    except Exception as exc:
        log.warning("query cache set failed kind=%s tenant=%s error=%r", kind, tenant_id, exc)
    return value
