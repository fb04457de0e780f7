"""Quota decisions, the same for the in-process and the Redis store: token bucket, daily caps, all or nothing.

Every scenario runs against both stores with one fake clock, so the Lua script and the Python code are
held to the same numbers. The Redis variants need Redis on 127.0.0.1:6379 (marker ``redis``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest

from ingest import quotas
from ingest.pipeline import Throttled
from ingest.quotas import (
    DAY_SECONDS,
    Grant,
    LocalQuotaStore,
    QuotaExceeded,
    QuotaStore,
    RedisQuotaStore,
    day_of,
    seconds_to_midnight,
    take_tokens,
)
from tenants.logic import IngestPrincipal, TenantPolicy

REDIS_URL = "redis://127.0.0.1:6379/0"
NOON = 1_700_006_400.0 + 12 * 3600  # 2023-11-15 12:00:00 UTC


class Clock:
    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def principal(policy: TenantPolicy, name: str = "acme") -> IngestPrincipal:
    return IngestPrincipal(str(uuid.uuid4()), name, 1, policy)


def redis_or_fail(url: str = REDIS_URL) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis is not reachable at {url} ({exc}); start it with 'redis-server --daemonize yes' "
            "(or 'service redis-server start')"
        )
    finally:
        client.close()


def delete_prefix(prefix: str, url: str = REDIS_URL) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@contextlib.contextmanager
def fresh_redis_prefix() -> Iterator[str]:
    """A key prefix of a test's own in the shared Redis; its keys are deleted afterwards."""
    redis_or_fail()
    prefix = f"ollystack-test:{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        delete_prefix(prefix)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    with fresh_redis_prefix() as prefix:
        yield prefix


StoreFactory = Callable[[Clock], QuotaStore]


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
def make_store(request: pytest.FixtureRequest) -> Iterator[StoreFactory]:
    if request.param == "local":
        yield lambda clock: LocalQuotaStore(clock=clock)
        return
    prefix = request.getfixturevalue("redis_prefix")
    yield lambda clock: RedisQuotaStore(REDIS_URL, clock=clock, prefix=prefix)


def run(coro_fn: Callable[[], object]) -> None:
    asyncio.run(coro_fn())  # type: ignore[arg-type]


async def refused(store: QuotaStore, who: IngestPrincipal, records: int, nbytes: int = 0) -> QuotaExceeded:
    with pytest.raises(QuotaExceeded) as info:
        await store.check(who, records, nbytes)
    return info.value


# --- arithmetic -----------------------------------------------------------------------------------


def test_token_bucket_arithmetic() -> None:
    assert take_tokens(20, NOON, NOON, 10, 20, 20) == (True, 0, NOON, 0.0)
    allowed, tokens, _, wait = take_tokens(0, NOON, NOON + 0.5, 10, 20, 6)
    assert (allowed, tokens, wait) == (False, 5, pytest.approx(0.1))
    assert take_tokens(0, NOON, NOON + 100, 10, 20, 1)[1] == 19  # refills up to the burst, not beyond
    assert take_tokens(20, NOON, NOON, 10, 20, 50)[:2] == (True, -30)  # oversize: full bucket, into debt
    assert take_tokens(19, NOON, NOON, 10, 20, 50)[3] == pytest.approx(0.1)  # waits for a full bucket
    assert take_tokens(5, NOON, NOON - 3, 10, 20, 5)[:3] == (True, 0, NOON)  # clock went back: no refill


def test_days_are_utc() -> None:
    assert day_of(NOON) == date(2023, 11, 15)
    assert day_of(NOON + 12 * 3600) == date(2023, 11, 16)
    assert seconds_to_midnight(NOON) == 12 * 3600
    assert seconds_to_midnight(NOON + 12 * 3600 - 0.25) == 0.25


def test_quota_exceeded_is_a_throttled_retryable() -> None:
    exc = QuotaExceeded("x", 1.5, "daily_cap")
    assert isinstance(exc, Throttled)
    assert (exc.reason, exc.retry_after) == ("daily_cap", 1.5)


# --- both stores ----------------------------------------------------------------------------------


def test_rate_limit_and_burst(make_store: StoreFactory) -> None:
    clock = Clock()
    store = make_store(clock)
    acme = principal(TenantPolicy(rate_limit_per_second=10, burst=20))

    async def scenario() -> None:
        await store.check(acme, 20, 100)  # the whole burst at once
        exc = await refused(store, acme, 1)
        assert str(exc) == "tenant acme is over its rate limit of 10 records/s (burst 20); retry in 0.1 s"
        assert exc.reason == "rate_limited"
        assert exc.retry_after == pytest.approx(0.1)
        clock.advance(0.5)  # 5 tokens
        await store.check(acme, 5, 10)
        assert (await refused(store, acme, 3)).retry_after == pytest.approx(0.3)
        clock.advance(60)  # refilled to the burst, not to 600
        await store.check(acme, 20, 10)
        await refused(store, acme, 1)
        await store.close()

    run(scenario)
    assert store.usage(acme.tenant_id).records == 45  # refused requests are not counted


def test_default_burst_is_twice_the_rate_and_tenants_are_independent(make_store: StoreFactory) -> None:
    clock = Clock()
    store = make_store(clock)
    acme = principal(TenantPolicy(rate_limit_per_second=1000))
    other = principal(TenantPolicy(rate_limit_per_second=1000), "other")

    async def scenario() -> None:
        await store.check(acme, 2000, 0)
        exc = await refused(store, acme, 400)
        assert str(exc) == "tenant acme is over its rate limit of 1000 records/s (burst 2000); retry in 0.4 s"
        await store.check(other, 2000, 0)
        await store.close()

    run(scenario)


def test_a_request_larger_than_the_burst_goes_when_the_bucket_is_full(make_store: StoreFactory) -> None:
    clock = Clock()
    store = make_store(clock)
    acme = principal(TenantPolicy(rate_limit_per_second=10, burst=20))

    async def scenario() -> None:
        await store.check(acme, 50, 0)  # accepted: bucket full, now 30 in debt
        assert (await refused(store, acme, 1)).retry_after == pytest.approx(3.1)
        clock.advance(3.1)
        await store.check(acme, 1, 0)
        await store.close()

    run(scenario)


def test_daily_record_cap(make_store: StoreFactory) -> None:
    clock = Clock()
    store = make_store(clock)
    acme = principal(TenantPolicy(daily_records_cap=100))

    async def scenario() -> None:
        await store.check(acme, 60, 1000)
        exc = await refused(store, acme, 50)
        assert str(exc) == (
            "tenant acme would exceed its daily cap of 100 records (60 used today, this request has 50); "
            "the cap resets at 00:00 UTC, retry in 43200 s"
        )
        assert (exc.reason, exc.retry_after) == ("daily_cap", 43200)
        await store.check(acme, 40, 1000)  # exactly up to the cap
        await refused(store, acme, 1)
        await store.close()

    run(scenario)
    usage = store.usage(acme.tenant_id)
    assert (usage.day, usage.records, usage.bytes) == (date(2023, 11, 15), 100, 2000)


def test_daily_byte_cap_and_the_next_day(make_store: StoreFactory) -> None:
    clock = Clock(NOON + 12 * 3600 - 2)  # 23:59:58 UTC
    store = make_store(clock)
    acme = principal(TenantPolicy(daily_bytes_cap=10_000))

    async def scenario() -> None:
        await store.check(acme, 1, 9_000)
        exc = await refused(store, acme, 1, 1_001)
        assert str(exc) == (
            "tenant acme would exceed its daily cap of 10000 bytes (9000 used today, this request has "
            "1001); the cap resets at 00:00 UTC, retry in 2.0 s"
        )
        await store.check(acme, 1, 1_000)
        clock.advance(2)  # 00:00:00 the next day
        await store.check(acme, 1, 10_000)
        await store.close()

    run(scenario)
    usage = store.usage(acme.tenant_id)
    assert (usage.day, usage.records, usage.bytes) == (date(2023, 11, 16), 1, 10_000)


def test_a_refused_request_counts_nowhere(make_store: StoreFactory) -> None:
    clock = Clock()
    store = make_store(clock)
    acme = principal(TenantPolicy(rate_limit_per_second=10, burst=10, daily_records_cap=25))

    async def scenario() -> None:
        await store.check(acme, 10, 0)  # bucket empty, 10 used
        assert (await refused(store, acme, 5)).reason == "rate_limited"
        assert store.usage(acme.tenant_id).records == 10  # the rate refusal did not count
        clock.advance(1)  # bucket full again
        assert (await refused(store, acme, 20)).reason == "daily_cap"
        await store.check(acme, 10, 0)  # so the cap refusal took no tokens
        await store.close()

    run(scenario)
    assert store.usage(acme.tenant_id).records == 20


def test_release_gives_a_granted_request_back(make_store: StoreFactory) -> None:
    clock = Clock()
    store = make_store(clock)
    acme = principal(TenantPolicy(rate_limit_per_second=10, burst=10, daily_records_cap=100))

    async def scenario() -> None:
        await store.check(acme, 4, 40)
        grant = await store.check(acme, 6, 60)
        await store.release(grant)  # e.g. the WAL was full after all
        await store.check(acme, 6, 60)  # its tokens are back
        await store.close()

    run(scenario)
    usage = store.usage(acme.tenant_id)
    assert (usage.records, usage.bytes) == (10, 100)


def test_unlimited_tenants_are_counted_too(make_store: StoreFactory) -> None:
    store = make_store(Clock())
    acme = principal(TenantPolicy())

    async def scenario() -> None:
        for _ in range(3):
            await store.check(acme, 1000, 50_000)
        await store.close()

    run(scenario)
    assert store.usage(acme.tenant_id).records == 3000
    assert store.usage(str(uuid.uuid4())).records == 0


# --- the in-process store: today's usage survives a restart ---------------------------------------


def test_local_usage_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "ingest" / "usage.json"
    clock = Clock()
    acme = principal(TenantPolicy(daily_records_cap=100))

    first = LocalQuotaStore(path, clock=clock)
    asyncio.run(first.check(acme, 70, 7000))
    asyncio.run(first.close())
    data = json.loads(path.read_text())
    assert data["day"] == "2023-11-15"
    assert data["tenants"] == {acme.tenant_id: {"records": 70, "bytes": 7000}}

    second = LocalQuotaStore(path, clock=clock)  # the restart
    assert second.usage(acme.tenant_id).records == 70
    with pytest.raises(QuotaExceeded, match="70 used today"):
        asyncio.run(second.check(acme, 31, 0))

    clock.advance(DAY_SECONDS)  # a file from yesterday starts today at zero
    assert LocalQuotaStore(path, clock=clock).usage(acme.tenant_id).records == 0


def test_local_usage_is_saved_periodically_while_running(tmp_path: Path) -> None:
    path = tmp_path / "usage.json"
    store = LocalQuotaStore(path, clock=Clock(), save_interval=0.05)
    acme = principal(TenantPolicy())

    async def scenario() -> None:
        await store.check(acme, 5, 50)
        await store.check(acme, 5, 50)
        await asyncio.sleep(0.2)  # no further request: the change is still saved, in a thread
        assert json.loads(path.read_text())["tenants"][acme.tenant_id] == {"records": 10, "bytes": 100}
        await store.check(acme, 1, 1)
        await asyncio.sleep(0.2)
        assert json.loads(path.read_text())["tenants"][acme.tenant_id] == {"records": 11, "bytes": 101}

    asyncio.run(scenario())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_a_reading_process_follows_the_file_and_never_writes_it(tmp_path: Path) -> None:
    path = tmp_path / "usage.json"
    clock = Clock()
    acme = principal(TenantPolicy())
    counting = LocalQuotaStore(path, clock=clock)
    reading = LocalQuotaStore(path, clock=clock)  # e.g. a web process without receivers
    asyncio.run(counting.check(acme, 5, 50))
    counting.save()
    assert reading.usage(acme.tenant_id).records == 5
    asyncio.run(counting.check(acme, 5, 50))
    counting.save()
    os.utime(path, (clock.now + 1, clock.now + 1))  # make the change visible on coarse-mtime filesystems
    assert reading.usage(acme.tenant_id).records == 10
    before = path.read_bytes()
    reading.save()
    assert path.read_bytes() == before


def test_an_unreadable_usage_file_starts_from_zero(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "usage.json"
    path.write_text("{not json")
    store = LocalQuotaStore(path, clock=Clock())
    assert store.usage("anyone").records == 0
    assert "quota usage file unreadable, starting from zero" in caplog.text


def test_the_process_store_follows_the_setting(settings: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.exceptions import ImproperlyConfigured

    monkeypatch.setattr(quotas, "_store", None)
    settings.OLLYSTACK_QUOTA_STORE = "local"  # type: ignore[attr-defined]
    store = quotas.get_store()
    assert isinstance(store, LocalQuotaStore)
    assert store.path == Path(settings.VAR_DIR) / "ingest" / "usage.json"  # type: ignore[attr-defined]
    assert quotas.get_store() is store

    settings.REDIS_URL = "redis://:secret@127.0.0.1:6379/3"  # type: ignore[attr-defined]
    settings.OLLYSTACK_QUOTA_STORE = "redis"  # type: ignore[attr-defined]
    redis_store = quotas.build_store()
    assert isinstance(redis_store, RedisQuotaStore)
    assert quotas.redacted(redis_store.url) == "redis://:***@127.0.0.1:6379/3"

    settings.OLLYSTACK_QUOTA_STORE = "memcached"  # type: ignore[attr-defined]
    with pytest.raises(ImproperlyConfigured, match="OLLYSTACK_QUOTA_STORE='memcached' is not a quota store"):
        quotas.build_store()


def test_a_grant_from_a_failed_open_check_gives_nothing_back() -> None:
    store = LocalQuotaStore(clock=Clock())
    acme = principal(TenantPolicy())
    asyncio.run(store.check(acme, 5, 5))
    grant = Grant(acme.tenant_id, acme.policy, date(2023, 11, 15), 5, 5, counted=False)
    asyncio.run(store.release(grant))
    assert store.usage(acme.tenant_id).records == 5
