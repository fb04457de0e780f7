"""The Redis quota store for real: replicas sharing one limit, expiring keys, failing open when Redis is gone.

Needs Redis on 127.0.0.1:6379 (the shared tests) and the ``redis-server`` binary (the outage test starts
and kills its own server on a free port).
"""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ingest import metrics
from ingest.quotas import (
    DAY_SECONDS,
    QuotaExceeded,
    QuotaStoreUnavailable,
    RedisQuotaStore,
    day_of,
    seconds_to_midnight,
)
from tenants.logic import TenantPolicy
from tests.ingest.test_quotas import REDIS_URL, fresh_redis_prefix, principal

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    with fresh_redis_prefix() as prefix:
        yield prefix


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def errors() -> float:
    return (
        metrics.REGISTRY.get_sample_value("ollystack_ingest_quota_store_errors_total", {"store": "redis"})
        or 0
    )


async def attempt(store: RedisQuotaStore, who: object, records: int, nbytes: int = 0) -> bool:
    try:
        await store.check(who, records, nbytes)  # type: ignore[arg-type]
    except QuotaExceeded:
        return False
    return True


def test_two_replicas_share_one_rate_limit(redis_prefix: str) -> None:
    """Both replicas use the Redis server's clock; 1 record/s refills next to nothing during the test."""
    acme = principal(TenantPolicy(rate_limit_per_second=1, burst=100))
    replicas = [RedisQuotaStore(REDIS_URL, prefix=redis_prefix) for _ in range(2)]

    async def scenario() -> list[bool]:
        results = await asyncio.gather(*(attempt(replicas[i % 2], acme, 5) for i in range(60)))
        for replica in replicas:
            await replica.close()
        return results

    started = time.monotonic()
    results = asyncio.run(scenario())
    refill = int(time.monotonic() - started) + 1
    assert 20 <= results.count(True) <= 20 + refill
    assert results.count(True) + results.count(False) == 60


def test_two_replicas_share_one_daily_cap(redis_prefix: str) -> None:
    acme = principal(TenantPolicy(daily_records_cap=100, daily_bytes_cap=10**9))
    replicas = [RedisQuotaStore(REDIS_URL, prefix=redis_prefix) for _ in range(2)]

    async def scenario() -> list[bool]:
        results = await asyncio.gather(*(attempt(replicas[i % 2], acme, 5, 10) for i in range(40)))
        for replica in replicas:
            await replica.close()
        return results

    results = asyncio.run(scenario())
    assert results.count(True) == 20  # exactly: the cap is counted atomically
    usage = replicas[0].usage(acme.tenant_id)
    assert (usage.records, usage.bytes) == (100, 200)
    assert replicas[1].usage(acme.tenant_id) == usage


def test_keys_expire(redis_prefix: str) -> None:
    acme = principal(TenantPolicy(rate_limit_per_second=10, burst=20))
    store = RedisQuotaStore(REDIS_URL, prefix=redis_prefix)

    async def scenario() -> None:
        await store.check(acme, 20, 100)
        await store.close()

    asyncio.run(scenario())
    bucket, day = store.keys(acme.tenant_id, day_of(time.time()))
    client = redis.Redis.from_url(REDIS_URL)
    try:
        assert 0 < client.pttl(bucket) <= 3_000  # empty bucket: full again after 2 s, plus a second
        to_midnight = seconds_to_midnight(time.time())
        assert to_midnight < client.ttl(day) <= math.ceil(to_midnight) + DAY_SECONDS  # yesterday stays a day
        assert client.hgetall(day) == {b"records": b"20", b"bytes": b"100"}
    finally:
        client.close()


def test_unreachable_redis_fails_open(caplog: pytest.LogCaptureFixture) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    store = RedisQuotaStore(url, retry_interval=0)
    blocked = principal(TenantPolicy(daily_records_cap=0))  # would refuse everything
    before = errors()

    async def scenario() -> None:
        for _ in range(5):
            grant = await store.check(blocked, 10, 100)
            assert not grant.counted

    started = time.monotonic()
    caplog.set_level(logging.WARNING, logger="ingest.quotas")
    asyncio.run(scenario())
    assert time.monotonic() - started < 2
    assert errors() - before == 5
    warnings = [r.getMessage() for r in caplog.records if "quota store unreachable" in r.getMessage()]
    assert len(warnings) == 1  # at most one per WARN_INTERVAL_SECONDS
    assert "admitting requests without quota checks" in warnings[0]
    assert "hunter2" not in caplog.text
    with pytest.raises(QuotaStoreUnavailable, match=r"^the quota store \(Redis at redis://:\*\*\*@127.0.0.1"):
        store.usage(blocked.tenant_id)


class OwnRedis:
    """A redis-server of a test's own on a free port, to stop and start again."""

    def __init__(self, directory: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed; install it with 'apt-get install redis-server'")
        self.binary, self.directory = binary, directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        options = {"port": str(self.port), "bind": "127.0.0.1", "save": "", "appendonly": "no"}
        args = [arg for name, value in options.items() for arg in (f"--{name}", value)]
        self.process = subprocess.Popen(
            [self.binary, *args, "--dir", str(self.directory)], stdout=subprocess.DEVNULL
        )
        client = redis.Redis(port=self.port)
        try:
            for _ in range(200):
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    time.sleep(0.025)
            pytest.fail(f"redis-server did not start on port {self.port}")
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_redis_outage_fails_open_and_recovers(own_redis: OwnRedis) -> None:
    store = RedisQuotaStore(own_redis.url, retry_interval=0.2)
    acme = principal(TenantPolicy(daily_records_cap=10))

    async def scenario() -> None:
        assert (await store.check(acme, 10, 0)).counted
        with pytest.raises(QuotaExceeded):
            await store.check(acme, 1, 0)
        own_redis.stop()
        before = errors()
        assert not (await store.check(acme, 1, 0)).counted  # down: admitted, unchecked
        assert not (await store.check(acme, 1, 0)).counted  # and Redis is not asked again for a while
        assert errors() - before == 2
        own_redis.start()  # a fresh, empty server
        await asyncio.sleep(0.25)  # past retry_interval
        assert (await store.check(acme, 10, 0)).counted  # counting again
        with pytest.raises(QuotaExceeded):
            await store.check(acme, 1, 0)
        await store.close()

    asyncio.run(scenario())
    assert store.usage(acme.tenant_id).records == 10
