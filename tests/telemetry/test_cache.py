"""The read query cache: hits and misses counted, tenants kept apart, TTLs, and reads that survive a broken
cache store (in-process here; Redis as configured in production below)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import caches
from django.test import override_settings

from ingest import metrics
from ollystack.telemetry import cache
from ollystack.telemetry.cache import cached_read, default_ttl

NS = 1_000_000_000


def counted(kind: str, result: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "ollystack_query_cache_requests_total", {"kind": kind, "result": result}
    )
    return value or 0.0


@dataclass(frozen=True)
class Query:
    service: str
    limit: int


class Source:
    """A read function that answers with the tenant and how often it was called."""

    def __init__(self) -> None:
        self.calls = 0

    def for_tenant(self, tenant: str) -> Any:
        def compute() -> dict[str, Any]:
            self.calls += 1
            return {"tenant": tenant, "call": self.calls}

        return compute


@pytest.fixture
def kind() -> str:
    return f"test.{uuid.uuid4().hex[:8]}"


def test_a_repeat_is_a_hit_and_counted(kind: str) -> None:
    source, tenant = Source(), str(uuid.uuid4())
    params = {"start_ns": None, "end_ns": None, "service": "checkout"}
    assert cached_read(tenant, kind, params, source.for_tenant(tenant)) == {"tenant": tenant, "call": 1}
    assert (counted(kind, "miss"), counted(kind, "hit")) == (1, 0)
    # the same question with the parameters in another order
    again = cached_read(tenant, kind, dict(reversed(params.items())), source.for_tenant(tenant))
    assert again == {"tenant": tenant, "call": 1}
    assert (counted(kind, "miss"), counted(kind, "hit"), source.calls) == (1, 1, 1)
    # another question
    cached_read(tenant, kind, {**params, "service": "billing"}, source.for_tenant(tenant))
    assert (counted(kind, "miss"), counted(kind, "hit"), source.calls) == (2, 1, 2)


def test_tenant_b_never_gets_tenant_as_result(kind: str) -> None:
    source = Source()
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    params = {"q": Query("checkout", 10)}
    assert cached_read(a, kind, params, source.for_tenant(a))["tenant"] == a
    assert cached_read(b, kind, params, source.for_tenant(b))["tenant"] == b
    assert cached_read(a, kind, params, source.for_tenant(a))["tenant"] == a
    assert cached_read(b, kind, params, source.for_tenant(b))["tenant"] == b
    assert source.calls == 2
    assert (counted(kind, "miss"), counted(kind, "hit")) == (2, 2)


def test_dataclass_parameters_are_part_of_the_key(kind: str) -> None:
    source, tenant = Source(), str(uuid.uuid4())
    first = cached_read(tenant, kind, {"q": Query("checkout", 10)}, source.for_tenant(tenant))
    other = cached_read(tenant, kind, {"q": Query("checkout", 11)}, source.for_tenant(tenant))
    assert first["call"] == 1
    assert other["call"] == 2


def test_results_are_copies(kind: str) -> None:
    tenant = str(uuid.uuid4())
    first: list[int] = cached_read(tenant, kind, {}, lambda: [1, 2])
    first.append(3)
    assert cached_read(tenant, kind, {}, lambda: [9]) == [1, 2]


def test_entries_expire(kind: str) -> None:
    source, tenant = Source(), str(uuid.uuid4())
    assert cached_read(tenant, kind, {}, source.for_tenant(tenant), ttl=0.2)["call"] == 1
    assert cached_read(tenant, kind, {}, source.for_tenant(tenant), ttl=0.2)["call"] == 1
    time.sleep(0.3)
    assert cached_read(tenant, kind, {}, source.for_tenant(tenant), ttl=0.2)["call"] == 2


def test_ttl_zero_turns_the_cache_off(kind: str) -> None:
    source, tenant = Source(), str(uuid.uuid4())
    with override_settings(OLLYSTACK_QUERY_CACHE_SECONDS=0):
        assert cached_read(tenant, kind, {}, source.for_tenant(tenant))["call"] == 1
        assert cached_read(tenant, kind, {}, source.for_tenant(tenant))["call"] == 2
    assert (counted(kind, "miss"), counted(kind, "hit")) == (0, 0)


@override_settings(
    OLLYSTACK_QUERY_CACHE_SECONDS=5,
    OLLYSTACK_QUERY_CACHE_SETTLED_AFTER_SECONDS=300,
    OLLYSTACK_QUERY_CACHE_SETTLED_SECONDS=60,
)
def test_settled_ranges_live_longer() -> None:
    now = 1_700_000_000 * NS
    assert default_ttl({}, now) == 5
    assert default_ttl({"end_ns": None}, now) == 5
    assert default_ttl({"end_ns": now - 60 * NS}, now) == 5
    assert default_ttl({"end_ns": now - 301 * NS}, now) == 60
    assert default_ttl({"end_ns": now + 60 * NS}, now) == 5


def test_tenant_is_required(kind: str) -> None:
    with pytest.raises(ValueError, match="tenant"):
        cached_read("", kind, {}, lambda: 1)


def test_parameters_must_be_plain_values(kind: str) -> None:
    with pytest.raises(TypeError, match="cannot use a object in a query cache key"):
        cached_read(str(uuid.uuid4()), kind, {"x": object()}, lambda: 1)


class BrokenCache:
    def get(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("cache store down")

    def set(self, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("cache store down")


def test_a_broken_store_does_not_break_reads(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache, "caches", {cache.CACHE_ALIAS: BrokenCache()})
    source, tenant = Source(), str(uuid.uuid4())
    assert cached_read(tenant, kind, {}, source.for_tenant(tenant))["call"] == 1
    assert cached_read(tenant, kind, {}, source.for_tenant(tenant))["call"] == 2
    assert counted(kind, "error") == 2


def test_the_counters_are_in_the_self_metrics_registry(kind: str) -> None:
    from prometheus_client import generate_latest

    cached_read(str(uuid.uuid4()), kind, {}, lambda: 1)
    text = generate_latest(metrics.REGISTRY).decode()
    assert f'ollystack_query_cache_requests_total{{kind="{kind}",result="miss"}} 1.0' in text


# --- Redis, as in the production profile -------------------------------------------------------------------


@pytest.fixture
def redis_query_cache() -> Iterator[None]:
    prefix = f"test-query-{uuid.uuid4().hex[:8]}"
    config = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        cache.CACHE_ALIAS: {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/0",
            "KEY_PREFIX": prefix,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        },
    }
    with override_settings(CACHES=config):
        store = caches[cache.CACHE_ALIAS]
        try:
            store.get("ping")
        except Exception as exc:
            pytest.fail(f"Redis is not reachable on 127.0.0.1:6379 ({exc}); start it: redis-server")
        yield  # entries expire within seconds; clear() would flush the whole shared Redis database


@pytest.mark.redis
@pytest.mark.usefixtures("redis_query_cache")
def test_redis_store_hits_and_separates_tenants(kind: str) -> None:
    source = Source()
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    params = {"q": Query("checkout", 10), "end_ns": None}
    assert cached_read(a, kind, params, source.for_tenant(a)) == {"tenant": a, "call": 1}
    assert cached_read(b, kind, params, source.for_tenant(b)) == {"tenant": b, "call": 2}
    assert cached_read(a, kind, params, source.for_tenant(a)) == {"tenant": a, "call": 1}
    assert cached_read(b, kind, params, source.for_tenant(b)) == {"tenant": b, "call": 2}
    assert (counted(kind, "miss"), counted(kind, "hit")) == (2, 2)


def test_web_processes_serve_the_counters_when_asked(kind: str, client: Any) -> None:
    cached_read(str(uuid.uuid4()), kind, {}, lambda: 1)
    with override_settings(OLLYSTACK_WEB_METRICS=True):
        response = client.get("/metrics")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain")
        assert f'ollystack_query_cache_requests_total{{kind="{kind}",result="miss"}} 1.0' in response.text
    with override_settings(OLLYSTACK_WEB_METRICS=False):
        assert client.get("/metrics").status_code == 404
