"""Per-tenant ingest quotas, decided once per request (never per record).

Two limits, both from the tenant's ``TenantPolicy`` (empty = unlimited):

- a rate limit: a token bucket that refills at ``rate_limit_per_second`` records per second up to the
  burst (``burst``, default twice the rate). A request takes as many tokens as it has records. A request
  larger than the whole bucket is accepted when the bucket is full and leaves it in debt, so the average
  rate holds and no request size is refused forever.
- daily caps on records and on uncompressed OTLP bytes per UTC day. A JSON request counts as its protobuf
  equivalent, so the encoding a sender picks does not change what it uses.

A request is decided atomically and all or nothing: it is either counted against every limit or refused
without counting anything. Refusals raise ``QuotaExceeded`` (a ``Throttled``: gRPC RESOURCE_EXHAUSTED with
RetryInfo, HTTP 429 with Retry-After) whose message names the tenant and the limit.

Two stores behind one interface (``OLLYSTACK_QUOTA_STORE``):

- ``local`` (embedded profile): in-process state. Today's usage is saved to
  ``OLLYSTACK_VAR_DIR/ingest/usage.json`` at most ``SAVE_INTERVAL_SECONDS`` after it changed and on stop
  (and at exit), and read back on start, so a restart does not reset the daily caps (token buckets start
  full, as after a quiet period).
- ``redis`` (production): one Lua script per request updates the bucket and the daily counters in one
  atomic step, so the limits hold across every ingestd replica that shares the Redis; the bucket uses the
  Redis server's clock, so replicas' clocks need not agree. Keys expire on their own. If Redis cannot be
  reached, requests are admitted unchecked (ingest must not stop because its meter did), counted in
  ``ollystack_ingest_quota_store_errors_total``, with a warning at most every ``WARN_INTERVAL_SECONDS``;
  after a failure Redis is not asked again for ``REDIS_RETRY_SECONDS`` so a dead Redis costs nothing.

The admin and the usage API read today's usage with ``tenant_usage``; in the embedded profile they run in
the same process as the receivers and read the very store that counts.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from ingest import metrics
from ingest.pipeline import Throttled
from ingest.state import USAGE_FILE, state_dir, write_json_atomic
from tenants import logic as tenant_logic
from tenants.logic import IngestPrincipal, TenantPolicy, TenantRef

if TYPE_CHECKING:
    import redis
    import redis.asyncio

log = logging.getLogger(__name__)

DAY_SECONDS = 86_400
SAVE_INTERVAL_SECONDS = 10.0
WARN_INTERVAL_SECONDS = 10.0
REDIS_TIMEOUT_SECONDS = 0.5
REDIS_RETRY_SECONDS = 1.0
REDIS_PREFIX = "ollystack:quota"
STORES = ("local", "redis")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# Float slack, so that a sender that waited exactly retry_after is not refused by a rounding error.
TOKEN_EPSILON = 1e-6

Reason = Literal["rate_limited", "daily_cap"]

# Decision outcomes (also what the Lua script returns first).
ALLOWED, RATE_LIMITED, RECORDS_CAP, BYTES_CAP = 0, 1, 2, 3


class QuotaExceeded(Throttled):
    """The tenant is over a quota; nothing of the request was counted. ``reason`` is the metric label."""

    def __init__(self, message: str, retry_after: float, reason: Reason) -> None:
        super().__init__(message, retry_after)
        self.reason = reason


class QuotaStoreUnavailable(Exception):
    """Usage cannot be read right now (Redis unreachable); the message says which store and why."""


@dataclass(frozen=True)
class Usage:
    """What a tenant used on one UTC day."""

    day: date
    records: int = 0
    bytes: int = 0

    @property
    def resets_at(self) -> datetime:
        return datetime(self.day.year, self.day.month, self.day.day, tzinfo=UTC) + timedelta(days=1)


@dataclass(frozen=True)
class TenantUsage:
    """A tenant's policy and today's usage, for the admin and the usage API."""

    tenant: TenantRef
    policy: TenantPolicy
    usage: Usage | None  # None when the store cannot be read; usage_error says why
    store: str
    usage_error: str = ""


@dataclass(frozen=True)
class Decision:
    outcome: int
    records: int  # used today, including this request if it was allowed
    bytes: int
    wait: float = 0.0  # RATE_LIMITED: seconds until the bucket holds enough tokens


@dataclass(frozen=True)
class Grant:
    """What ``check`` counted for one request, so that ``release`` can give it back."""

    tenant_id: str
    policy: TenantPolicy
    day: date
    records: int
    bytes: int
    counted: bool = True  # False when the store failed open: nothing to give back


# --- arithmetic shared by both stores (the Lua script mirrors it) ---------------------------------


def day_of(now: float) -> date:
    """The UTC day of a Unix time."""
    return date.fromordinal(_EPOCH_ORDINAL + int(now // DAY_SECONDS))


def seconds_to_midnight(now: float) -> float:
    """Seconds from ``now`` to the next 00:00 UTC (Unix time has no leap seconds)."""
    return DAY_SECONDS - now % DAY_SECONDS


def take_tokens(
    tokens: float, stamp: float, now: float, rate: float, burst: float, n: int
) -> tuple[bool, float, float, float]:
    """One token-bucket step: (allowed, tokens left, new stamp, seconds to wait if refused)."""
    if now > stamp:
        tokens = min(burst, tokens + (now - stamp) * rate)
        stamp = now
    if n <= tokens + TOKEN_EPSILON or tokens >= burst:  # larger than the bucket: goes when it is full
        return True, tokens - n, stamp, 0.0
    return False, tokens, stamp, (min(n, burst) - tokens) / rate


def _daily_refusal(policy: TenantPolicy, used_records: int, used_bytes: int, n: int, size: int) -> int:
    if policy.daily_records_cap is not None and used_records + n > policy.daily_records_cap:
        return RECORDS_CAP
    if policy.daily_bytes_cap is not None and used_bytes + size > policy.daily_bytes_cap:
        return BYTES_CAP
    return ALLOWED


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{math.ceil(seconds)} s"


def refusal(
    principal: IngestPrincipal, decision: Decision, records: int, nbytes: int, now: float
) -> QuotaExceeded:
    """The error for a refused request: which limit, how far, and when to come back."""
    policy, name = principal.policy, principal.tenant_name
    if decision.outcome == RATE_LIMITED:
        return QuotaExceeded(
            f"tenant {name} is over its rate limit of {policy.rate_limit_per_second} records/s "
            f"(burst {policy.effective_burst}); retry in {_format_seconds(decision.wait)}",
            decision.wait,
            "rate_limited",
        )
    wait = seconds_to_midnight(now)
    if decision.outcome == RECORDS_CAP:
        cap, used, asked, unit = policy.daily_records_cap, decision.records, records, "records"
    else:
        cap, used, asked, unit = policy.daily_bytes_cap, decision.bytes, nbytes, "bytes"
    return QuotaExceeded(
        f"tenant {name} would exceed its daily cap of {cap} {unit} ({used} used today, this request has "
        f"{asked}); the cap resets at 00:00 UTC, retry in {_format_seconds(wait)}",
        wait,
        "daily_cap",
    )


# --- the interface --------------------------------------------------------------------------------


class QuotaStore(ABC):
    name = ""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock
        self._gauge_day: date | None = None

    def now(self) -> float:
        return self._clock() if self._clock is not None else time.time()

    async def check(self, principal: IngestPrincipal, records: int, nbytes: int) -> Grant:
        """Count one request against its tenant's quotas, or raise ``QuotaExceeded`` having counted nothing.

        ``records`` and ``nbytes`` are the request's records and uncompressed OTLP bytes. Runs on the
        event loop: no database, no blocking I/O.
        """
        now = self.now()
        day = day_of(now)
        decision = await self._decide(principal, records, nbytes, now)
        if decision is None:  # failed open
            return Grant(principal.tenant_id, principal.policy, day, records, nbytes, counted=False)
        self._publish(principal.tenant_name, day, decision)
        if decision.outcome != ALLOWED:
            raise refusal(principal, decision, records, nbytes, now)
        return Grant(principal.tenant_id, principal.policy, day, records, nbytes)

    async def release(self, grant: Grant) -> None:
        """Give back a granted request that was refused later (WAL full): refused means not counted."""
        if grant.counted:
            await self._release(grant)

    @abstractmethod
    async def _decide(
        self, principal: IngestPrincipal, records: int, nbytes: int, now: float
    ) -> Decision | None: ...

    @abstractmethod
    async def _release(self, grant: Grant) -> None: ...

    @abstractmethod
    def usage(self, tenant_id: str) -> Usage:
        """Today's usage (sync: for the admin and the API, never on the event loop)."""

    @abstractmethod
    async def close(self) -> None:
        """Persist or disconnect; the store can still be used afterwards (it reconnects)."""

    def _publish(self, tenant_name: str, day: date, decision: Decision) -> None:
        if day != self._gauge_day:
            metrics.USAGE_TODAY_RECORDS.clear()
            metrics.USAGE_TODAY_BYTES.clear()
            self._gauge_day = day
        metrics.USAGE_TODAY_RECORDS.labels(tenant_name).set(decision.records)
        metrics.USAGE_TODAY_BYTES.labels(tenant_name).set(decision.bytes)


# --- in-process -----------------------------------------------------------------------------------


class LocalQuotaStore(QuotaStore):
    """Quota state in this process; today's usage survives restarts through ``path``.

    Only one process may count with a given file (the embedded profile runs one). A process that only
    reads usage (admin without receivers) re-reads the file when it changes and never writes it.
    """

    name = "local"

    def __init__(
        self,
        path: Path | None = None,
        *,
        clock: Callable[[], float] | None = None,
        save_interval: float = SAVE_INTERVAL_SECONDS,
    ) -> None:
        super().__init__(clock)
        self.path = path
        self.save_interval = save_interval
        self._lock = threading.Lock()  # check runs on the loop, usage in Django's threads
        self._save_lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant id → (tokens, stamp)
        self._usage: dict[str, tuple[int, int]] = {}  # tenant id → (records, bytes) today
        self._day = day_of(self.now())
        self._day_start = (self._day.toordinal() - _EPOCH_ORDINAL) * DAY_SECONDS
        self._dirty = False
        self._counting = False
        self._file_mtime: float | None = None
        self._last_save = time.monotonic()
        self._saving: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        if path is not None:
            self._load()

    def _roll(self, now: float) -> None:
        if not self._day_start <= now < self._day_start + DAY_SECONDS:
            self._day = day_of(now)
            self._day_start = (self._day.toordinal() - _EPOCH_ORDINAL) * DAY_SECONDS
            self._usage = {}

    async def _decide(
        self, principal: IngestPrincipal, records: int, nbytes: int, now: float
    ) -> Decision | None:
        tenant_id, policy = principal.tenant_id, principal.policy
        with self._lock:
            self._counting = True
            self._roll(now)
            used_records, used_bytes = self._usage.get(tenant_id, (0, 0))
            outcome = _daily_refusal(policy, used_records, used_bytes, records, nbytes)
            if outcome != ALLOWED:
                return Decision(outcome, used_records, used_bytes)
            rate = policy.rate_limit_per_second
            if rate is not None:
                burst = policy.effective_burst or rate
                tokens, stamp = self._buckets.get(tenant_id, (burst, now))
                allowed, tokens, stamp, wait = take_tokens(tokens, stamp, now, rate, burst, records)
                if not allowed:
                    return Decision(RATE_LIMITED, used_records, used_bytes, wait)
                self._buckets[tenant_id] = (tokens, stamp)
            used_records, used_bytes = used_records + records, used_bytes + nbytes
            self._usage[tenant_id] = (used_records, used_bytes)
            self._dirty = True
        self._maybe_save()
        return Decision(ALLOWED, used_records, used_bytes)

    async def _release(self, grant: Grant) -> None:
        with self._lock:
            if grant.day == self._day and grant.tenant_id in self._usage:
                used_records, used_bytes = self._usage[grant.tenant_id]
                self._usage[grant.tenant_id] = (
                    max(0, used_records - grant.records),
                    max(0, used_bytes - grant.bytes),
                )
                self._dirty = True
            bucket = self._buckets.get(grant.tenant_id)
            burst = grant.policy.effective_burst
            if bucket is not None and burst is not None:
                self._buckets[grant.tenant_id] = (min(burst, bucket[0] + grant.records), bucket[1])

    def usage(self, tenant_id: str) -> Usage:
        if not self._counting and self.path is not None:
            self._reload_if_changed()
        with self._lock:
            self._roll(self.now())
            records, nbytes = self._usage.get(tenant_id, (0, 0))
            return Usage(self._day, records, nbytes)

    # --- persistence ------------------------------------------------------------------------------
    def _maybe_save(self) -> None:
        """Save at most every ``save_interval``, and at the latest ``save_interval`` after a change."""
        loop = asyncio.get_running_loop()
        if self.path is None or (self._timer is not None and self._timer_loop is loop):
            return
        delay = max(0.0, self.save_interval - (time.monotonic() - self._last_save))
        self._timer, self._timer_loop = loop.call_later(delay, self._start_save), loop

    def _start_save(self) -> None:
        self._timer = None
        self._last_save = time.monotonic()
        self._saving = asyncio.get_running_loop().run_in_executor(None, self.save)

    def save(self) -> None:
        """Write today's usage if it changed (a thread or ``atexit``, never the event loop)."""
        if self.path is None:
            return
        with self._save_lock:
            with self._lock:
                if not self._dirty:
                    return
                data = {
                    "day": self._day.isoformat(),
                    "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "tenants": {tid: {"records": r, "bytes": b} for tid, (r, b) in self._usage.items()},
                }
                self._dirty = False
            try:
                write_json_atomic(self.path, data, mode=0o644)
            except OSError as exc:
                with self._lock:
                    self._dirty = True
                log.warning("quota usage not saved path=%s error=%s", self.path, exc)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await asyncio.to_thread(self.save)  # waits for a periodic save under way (_save_lock)

    def _load(self) -> None:
        assert self.path is not None
        try:
            self._file_mtime = self.path.stat().st_mtime
            data = json.loads(self.path.read_text())
            day = date.fromisoformat(data["day"])
            usage = {str(tid): (int(v["records"]), int(v["bytes"])) for tid, v in data["tenants"].items()}
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("quota usage file unreadable, starting from zero path=%s error=%s", self.path, exc)
            return
        with self._lock:
            if day != self._day:
                log.info("quota usage file is from %s, today starts at zero path=%s", day, self.path)
                self._usage = {}
                return
            self._usage = usage
        log.info("quota usage restored path=%s day=%s tenants=%d", self.path, day, len(usage))

    def _reload_if_changed(self) -> None:
        assert self.path is not None
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return
        if mtime != self._file_mtime:
            self._load()


# --- Redis ----------------------------------------------------------------------------------------

# KEYS: bucket hash, day hash. ARGV: rate (0 = none), burst, records, bytes, records cap (-1 = none),
# bytes cap (-1 = none), day key TTL seconds, now in Unix seconds ("" = the Redis server's clock).
# Returns {outcome, records used today, bytes used today, wait in ms}; the numbers of take_tokens().
CONSUME_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local size = tonumber(ARGV[4])
local records_cap = tonumber(ARGV[5])
local bytes_cap = tonumber(ARGV[6])
local now = tonumber(ARGV[8])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local used = redis.call('HMGET', KEYS[2], 'records', 'bytes')
local used_records = tonumber(used[1]) or 0
local used_bytes = tonumber(used[2]) or 0
if records_cap >= 0 and used_records + n > records_cap then
  return {2, used_records, used_bytes, 0}
end
if bytes_cap >= 0 and used_bytes + size > bytes_cap then
  return {3, used_records, used_bytes, 0}
end
if rate > 0 then
  local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
  local tokens = tonumber(state[1]) or burst
  local stamp = tonumber(state[2]) or now
  if now > stamp then
    tokens = math.min(burst, tokens + (now - stamp) * rate)
    stamp = now
  end
  if n > tokens + 0.000001 and tokens < burst then
    return {1, used_records, used_bytes, math.ceil((math.min(n, burst) - tokens) * 1000 / rate)}
  end
  tokens = tokens - n
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
    'stamp', string.format('%.17g', stamp))
  redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
end
used_records = redis.call('HINCRBY', KEYS[2], 'records', n)
used_bytes = redis.call('HINCRBY', KEYS[2], 'bytes', size)
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[7]))
return {0, used_records, used_bytes, 0}
"""

# KEYS: bucket hash, day hash. ARGV: burst (0 = no bucket), records, bytes.
RELEASE_LUA = """
local burst = tonumber(ARGV[1])
if burst > 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens')) or burst
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', math.min(burst, tokens + tonumber(ARGV[2]))))
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'records', -tonumber(ARGV[2]))
  redis.call('HINCRBY', KEYS[2], 'bytes', -tonumber(ARGV[3]))
end
return 0
"""


def redacted(url: str) -> str:
    """The URL without its password, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class RedisQuotaStore(QuotaStore):
    """Quota state in Redis, shared by every ingestd replica (``redis.asyncio`` on the hot path)."""

    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] | None = None,
        prefix: str = REDIS_PREFIX,
        timeout: float = REDIS_TIMEOUT_SECONDS,
        retry_interval: float = REDIS_RETRY_SECONDS,
        warn_interval: float = WARN_INTERVAL_SECONDS,
    ) -> None:
        super().__init__(clock)
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self.retry_interval = retry_interval
        self.warn_interval = warn_interval
        self._client: redis.asyncio.Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._consume: Any = None
        self._give_back: Any = None
        self._sync: redis.Redis | None = None
        self._sync_lock = threading.Lock()
        self._skip_until = 0.0
        self._last_warning = -math.inf
        self._unchecked = 0  # requests admitted unchecked since the last warning

    def keys(self, tenant_id: str, day: date) -> list[str]:
        """The bucket and the day counter of a tenant; ``{tenant}`` keeps both in one cluster slot."""
        return [f"{self.prefix}:{{{tenant_id}}}:bucket", f"{self.prefix}:{{{tenant_id}}}:{day.isoformat()}"]

    def _async_client(self) -> redis.asyncio.Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            from redis.asyncio import Redis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            self._client = Redis.from_url(
                self.url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                retry=Retry(NoBackoff(), 0),  # the default retries for seconds; we fail open instead
            )
            self._consume = self._client.register_script(CONSUME_LUA)
            self._give_back = self._client.register_script(RELEASE_LUA)
            self._loop = loop
        return self._client

    async def _decide(
        self, principal: IngestPrincipal, records: int, nbytes: int, now: float
    ) -> Decision | None:
        from redis.exceptions import RedisError

        if time.monotonic() < self._skip_until:
            self._fail_open(None)
            return None
        policy = principal.policy
        args = [
            policy.rate_limit_per_second or 0,
            policy.effective_burst or 0,
            records,
            nbytes,
            -1 if policy.daily_records_cap is None else policy.daily_records_cap,
            -1 if policy.daily_bytes_cap is None else policy.daily_bytes_cap,
            math.ceil(seconds_to_midnight(now)) + DAY_SECONDS,  # yesterday stays readable for a day
            repr(now) if self._clock is not None else "",
        ]
        try:
            self._async_client()
            outcome, used_records, used_bytes, wait_ms = await self._consume(
                keys=self.keys(principal.tenant_id, day_of(now)), args=args
            )
        except (RedisError, OSError) as exc:
            self._fail_open(exc)
            return None
        return Decision(int(outcome), int(used_records), int(used_bytes), int(wait_ms) / 1000)

    async def _release(self, grant: Grant) -> None:
        from redis.exceptions import RedisError

        try:
            self._async_client()
            await self._give_back(
                keys=self.keys(grant.tenant_id, grant.day),
                args=[grant.policy.effective_burst or 0, grant.records, grant.bytes],
            )
        except (RedisError, OSError) as exc:
            self._fail_open(exc)

    def _fail_open(self, exc: Exception | None) -> None:
        metrics.QUOTA_STORE_ERRORS.labels(self.name).inc()
        self._unchecked += 1
        if exc is not None:
            self._skip_until = time.monotonic() + self.retry_interval
        now = time.monotonic()
        if now - self._last_warning >= self.warn_interval:
            log.warning(
                "quota store unreachable, admitting requests without quota checks store=redis url=%s "
                "unchecked_requests=%d error=%s",
                redacted(self.url),
                self._unchecked,
                exc or "still failing",
            )
            self._last_warning = now
            self._unchecked = 0

    def _sync_client(self) -> redis.Redis:
        with self._sync_lock:
            if self._sync is None:
                from redis import Redis
                from redis.backoff import NoBackoff
                from redis.retry import Retry

                self._sync = Redis.from_url(
                    self.url,
                    socket_timeout=self.timeout * 4,
                    socket_connect_timeout=self.timeout * 4,
                    retry=Retry(NoBackoff(), 0),
                )
            return self._sync

    def usage(self, tenant_id: str) -> Usage:
        from redis.exceptions import RedisError

        day = day_of(self.now())
        try:
            records, nbytes = self._sync_client().hmget(self.keys(tenant_id, day)[1], ["records", "bytes"])
        except (RedisError, OSError) as exc:
            raise QuotaStoreUnavailable(
                f"the quota store (Redis at {redacted(self.url)}) cannot be reached: {exc}"
            ) from None
        return Usage(day, int(records or 0), int(nbytes or 0))

    async def close(self) -> None:
        client, self._client, self._loop = self._client, None, None
        if client is not None:
            await client.aclose()
        with self._sync_lock:
            sync, self._sync = self._sync, None
        if sync is not None:
            sync.close()


# --- the process's store --------------------------------------------------------------------------

_store: QuotaStore | None = None
_store_lock = threading.Lock()


def build_store() -> QuotaStore:
    """The store ``OLLYSTACK_QUOTA_STORE`` asks for (``local`` or ``redis``)."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    kind = getattr(settings, "OLLYSTACK_QUOTA_STORE", "local")
    if kind == "local":
        return LocalQuotaStore(state_dir() / USAGE_FILE)
    if kind == "redis":
        url = getattr(settings, "REDIS_URL", "")
        if not url:
            raise ImproperlyConfigured(
                "OLLYSTACK_QUOTA_STORE=redis needs OLLYSTACK_REDIS_URL (set by the production profile)"
            )
        return RedisQuotaStore(url)
    raise ImproperlyConfigured(
        f"OLLYSTACK_QUOTA_STORE={kind!r} is not a quota store; use {' or '.join(STORES)}"
    )


def get_store() -> QuotaStore:
    """The process-wide store: the receivers count with it, the admin and the API read it."""
    global _store
    with _store_lock:
        if _store is None:
            _store = build_store()
            if isinstance(_store, LocalQuotaStore):
                atexit.register(_store.save)  # also when the runtime never called close()
        return _store


def tenant_usage(tenant: str) -> TenantUsage:
    """A tenant's current policy (from the database) and today's usage (from the quota store)."""
    ref, policy = tenant_logic.tenant_policy(tenant)
    store = get_store()
    try:
        usage: Usage | None = store.usage(ref.tenant_id)
        error = ""
    except QuotaStoreUnavailable as exc:
        usage, error = None, str(exc)
    return TenantUsage(ref, policy, usage, store.name, error)
