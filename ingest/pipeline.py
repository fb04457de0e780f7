"""One ingest pipeline for every receiver: write-ahead log (WAL) on disk, acknowledge, insert in batches.

WAL layout: ``<wal_dir>/<signal>/<time_ns>-<pid>-<random>.seg``. A segment is a concatenation of
rows as built by ``ollystack.clickhouse.otlp.frame`` (varint length + one export request + its tenant and,
for traces of a sampled tenant, its sampling threshold), which is exactly what
``Backend.insert_otlp_segment`` feeds to ClickHouse's ``FORMAT Protobuf``. Trace sampling happens inside
that INSERT (see ``ollystack.clickhouse.ingest_sql``): Python never touches single records.

- ``submit`` appends one frame with one ``os.write`` to the open segment of its signal and returns; the
  request is acknowledged once that write returned, so it survives a crash of this process (the bytes
  are in the kernel's page cache).
- A segment is due after ``OLLYSTACK_BATCH_MAX_ROWS`` records or ``OLLYSTACK_BATCH_MAX_DELAY_MS`` after
  its first request, whichever comes first, and is sealed for insert as soon as a flusher is free; while
  all are busy it keeps growing (up to ``GROWTH_LIMIT`` times the batch size), so batches grow with load;
  a segment of ``OLLYSTACK_BATCH_MAX_BYTES`` is sealed at once, which bounds the engine's memory per INSERT.
- fsync policy: a sealed segment (and its directory entry) is fsynced by the flusher just before its
  insert. A power loss can therefore lose at most the acknowledged requests of the last
  ``OLLYSTACK_BATCH_MAX_DELAY_MS`` (plus whatever the flusher had not yet reached); a process crash loses
  nothing. fsyncing every request would cap ingest at the disk's fsync rate.
- Per signal, ``INSERT_CONCURRENCY`` flusher tasks insert sealed segments oldest first (engine calls in
  worker threads; ClickHouse parses one segment on one core, so two keep both cores busy) with the
  segment's file name as the insert deduplication token, and delete the file after a successful insert.
  A replay after a crash between insert and delete is therefore dropped by ClickHouse, not stored twice.
- A failed insert keeps the segment at the head of the queue and retries with exponential backoff. A
  segment refused ``QUARANTINE_AFTER`` times in a row that ClickHouse, while up, cannot even parse is
  corrupt: it is moved to ``<wal_dir>/quarantine/<signal>/``, logged and counted, and the segments
  behind it go on.
- On start, segments left by a previous run are inserted first, in name (= creation) order; a torn last
  frame of a segment written during a crash is truncated first (walking the per-request varint lengths).
- The WAL is bounded (``OLLYSTACK_WAL_MAX_BYTES``, default 1 GiB). When it is full ``submit`` raises
  ``Backpressure`` (gRPC UNAVAILABLE / HTTP 503 with a retry delay); a tenant holding more than
  ``TENANT_WAL_SHARE`` of it gets ``Throttled`` (RESOURCE_EXHAUSTED / 429) so that one tenant
  cannot starve the others while ClickHouse is slow or down.
- ``stop`` seals every open segment and flushes the queue; if ClickHouse fails at that point, the
  remaining segments stay on disk for the next start.
- ``on_written``, when given, is called in the event loop after each successful insert with the ids of
  the tenants that got rows (the per-tenant counts the engine already returned: no per-record work). It
  must return at once; the alert runtime uses it to evaluate those tenants' rules without waiting for the
  next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest import metrics
from ollystack.clickhouse import Signal
from ollystack.clickhouse.otlp import frame, sample_threshold

log = logging.getLogger(__name__)

WAL_MAX_BYTES = 1 << 30
TENANT_WAL_SHARE = 0.5
SEGMENT_SUFFIX = ".seg"
RETRY_INITIAL_SECONDS = 0.5
RETRY_MAX_SECONDS = 10.0
# Segments of one signal inserted at the same time: ClickHouse parses one segment on one core.
INSERT_CONCURRENCY = 2
# A segment refused this many times in a row is checked: if ClickHouse cannot parse it, it is quarantined.
QUARANTINE_AFTER = 3
QUARANTINE_DIR = "quarantine"
# While every flusher is busy a due segment keeps growing, up to this many times the batch size: under load
# inserts get bigger, which amortises the engine's fixed cost per INSERT (≈40 ms measured, mostly planning).
GROWTH_LIMIT = 10
# ...and never beyond this many bytes: the engine's memory for one INSERT grows with the segment.
BATCH_MAX_BYTES = 16 << 20


class Retryable(Exception):
    """The request was not accepted now; the sender should retry after ``retry_after`` seconds."""

    reason = "unavailable"

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Backpressure(Retryable):
    """The WAL is full or unavailable (ClickHouse behind): gRPC UNAVAILABLE, HTTP 503."""

    reason = "backpressure"


class Throttled(Retryable):
    """This tenant sends faster than storage takes its data: gRPC RESOURCE_EXHAUSTED, HTTP 429."""

    reason = "throttled"


@dataclass
class _Segment:
    path: Path
    size: int = 0
    rows: int = 0
    fd: int | None = None  # open until the flusher has fsynced it
    tenant_bytes: dict[str, int] = field(default_factory=dict)
    tenant_rows: dict[str, int] = field(default_factory=dict)  # by tenant id, for self-metrics
    tenant_names: dict[str, str] = field(default_factory=dict)
    sampled: bool = False  # holds traces of a tenant with sampling on
    due: bool = False  # reached the batch size or delay; sealed as soon as a flusher is free
    failures: int = 0  # consecutive failed inserts

    @property
    def created(self) -> float:
        """Wall-clock time of the first write (segment names start with it, in ns)."""
        try:
            return int(self.path.name.split("-", 1)[0]) / 1e9
        except ValueError:
            return self.path.stat().st_mtime


@dataclass
class _Lane:
    signal: Signal
    directory: Path
    open: _Segment | None = None
    timer: asyncio.TimerHandle | None = None
    sealed: deque[_Segment] = field(default_factory=deque)
    inserting: list[_Segment] = field(default_factory=list)

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def valid_prefix_length(data: bytes) -> int:
    """Length of the longest prefix of ``data`` made of whole varint-length-delimited frames."""
    pos, end = 0, len(data)
    while pos < end:
        length = shift = 0
        cursor = pos
        while True:
            if cursor >= end or shift > 63:
                return pos
            byte = data[cursor]
            cursor += 1
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
        if cursor + length > end:
            return pos
        pos = cursor + length
    return pos


class Pipeline:
    def __init__(
        self,
        wal_dir: Path,
        *,
        max_rows: int,
        max_segment_bytes: int = BATCH_MAX_BYTES,
        max_delay_ms: int,
        backend: Any = None,
        max_wal_bytes: int = WAL_MAX_BYTES,
        tenant_share: float = TENANT_WAL_SHARE,
        insert_concurrency: int = INSERT_CONCURRENCY,
        on_written: Callable[[Collection[str]], None] | None = None,
    ) -> None:
        self.wal_dir = Path(wal_dir)
        self.max_rows = max_rows
        self.max_segment_bytes = max_segment_bytes
        self.max_delay = max_delay_ms / 1000
        self.max_wal_bytes = max_wal_bytes
        self.tenant_share = tenant_share
        self.insert_concurrency = max(1, insert_concurrency)
        self._backend = backend
        self.on_written = on_written
        self._lanes: dict[Signal, _Lane] = {}
        self._wal_bytes = 0
        self._tenant_bytes: dict[str, int] = {}
        self._last_name_ns = 0
        self._started = False
        self._stopping = False
        self._stop_event: asyncio.Event | None = None
        # counters (also exported as Prometheus metrics)
        self.inserted_segments = 0
        self.inserted_rows = 0
        self.insert_errors = 0
        self.recovered_segments = 0

    @classmethod
    def from_settings(
        cls, backend: Any = None, on_written: Callable[[Collection[str]], None] | None = None
    ) -> Pipeline:
        from django.conf import settings

        return cls(
            Path(settings.OLLYSTACK_WAL_DIR),
            max_rows=settings.OLLYSTACK_BATCH_MAX_ROWS,
            max_segment_bytes=settings.OLLYSTACK_BATCH_MAX_BYTES,
            max_delay_ms=settings.OLLYSTACK_BATCH_MAX_DELAY_MS,
            max_wal_bytes=settings.OLLYSTACK_WAL_MAX_BYTES,
            backend=backend,
            on_written=on_written,
        )

    @property
    def wal_bytes(self) -> int:
        return self._wal_bytes

    def oldest_age(self) -> dict[str, float]:
        """Per signal, seconds since the oldest segment still in the WAL was started."""
        now = time.time()
        ages = {}
        for signal, lane in self._lanes.items():
            waiting = [*lane.inserting, *lane.sealed, *([lane.open] if lane.open else [])]
            ages[signal.value] = max((now - s.created for s in waiting), default=0.0)
        return ages

    # --- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        """Queue segments left by a previous run (they go first), then start one flusher per signal."""
        self._stop_event = asyncio.Event()
        self._stopping = False
        for signal in Signal:
            lane = _Lane(signal, self.wal_dir / signal.value)
            self._lanes[signal] = lane
            leftovers = await asyncio.to_thread(self._recover, signal, lane.directory)
            for segment in leftovers:
                lane.sealed.append(segment)
                self._wal_bytes += segment.size
            self.recovered_segments += len(leftovers)
            if leftovers:
                log.info("WAL replay signal=%s segments=%d", signal.value, len(leftovers))
            self._update_gauges(lane)
        for lane in self._lanes.values():
            lane.tasks = [
                asyncio.create_task(self._flush_loop(lane), name=f"ingest-flush-{lane.signal.value}-{n}")
                for n in range(self.insert_concurrency)
            ]
        metrics.WAL_AGE.source = self.oldest_age
        self._started = True

    async def stop(self) -> None:
        """Seal every open segment and insert everything that is in the WAL, then return."""
        if not self._started:
            return
        self._stopping = True
        for lane in self._lanes.values():
            self._seal(lane)
            lane.wake.set()
        assert self._stop_event is not None
        self._stop_event.set()
        await asyncio.gather(*(task for lane in self._lanes.values() for task in lane.tasks))
        self._started = False
        left = sum(len(lane.sealed) for lane in self._lanes.values())
        if left:
            log.warning(
                "WAL not empty at stop segments=%d bytes=%d; they are inserted at the next start",
                left,
                self._wal_bytes,
            )

    # --- hot path -----------------------------------------------------------------------------------
    async def submit(self, signal: Signal, principal: Any, request_bytes: bytes, record_count: int) -> None:
        """Append one request to the WAL; returns once it is written (the caller then acknowledges)."""
        if not self._started or self._stopping:
            raise Backpressure("the ingest pipeline is shutting down; retry shortly", retry_after=5)
        tenant_id: str = principal.tenant_id
        policy = principal.policy
        threshold = slow_ns = 0
        if signal is Signal.TRACES:
            threshold = sample_threshold(policy.trace_sample_rate)
            slow_ns = policy.trace_slow_threshold_ms * 1_000_000
        retention = {
            Signal.TRACES: policy.retention_days_traces,
            Signal.LOGS: policy.retention_days_logs,
            Signal.METRICS: policy.retention_days_metrics,
        }[signal]
        data = frame(tenant_id, request_bytes, threshold, slow_ns, retention)
        size = len(data)
        if self._wal_bytes + size > self.max_wal_bytes:
            raise Backpressure(
                f"ingest WAL is full ({self._wal_bytes} of {self.max_wal_bytes} bytes): "
                "storage is behind or unavailable; retry later",
                retry_after=self._retry_after(),
            )
        tenant_bytes = self._tenant_bytes.get(tenant_id, 0)
        if tenant_bytes + size > self.max_wal_bytes * self.tenant_share:
            raise Throttled(
                f"tenant {principal.tenant_name} has {tenant_bytes} bytes waiting for storage, "
                "its share of the ingest WAL; slow down and retry later",
                retry_after=self._retry_after(),
            )
        lane = self._lanes[signal]
        segment = lane.open or self._open_segment(lane)
        assert segment.fd is not None
        try:
            self._write_all(segment.fd, data)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(segment.fd, segment.size)
            log.error("WAL write failed signal=%s error=%s", signal.value, exc.strerror)
            raise Backpressure(f"ingest WAL cannot be written ({exc.strerror}); retry later", 10) from None
        segment.size += size
        segment.rows += record_count
        segment.tenant_bytes[tenant_id] = segment.tenant_bytes.get(tenant_id, 0) + size
        segment.tenant_rows[tenant_id] = segment.tenant_rows.get(tenant_id, 0) + record_count
        segment.tenant_names[tenant_id] = principal.tenant_name
        segment.sampled = segment.sampled or threshold > 0
        self._tenant_bytes[tenant_id] = tenant_bytes + size
        self._wal_bytes += size
        metrics.WAL_BYTES.labels(signal.value).inc(size)
        if segment.rows >= self.max_rows:
            segment.due = True
        if segment.size >= self.max_segment_bytes or (
            segment.due and (self._has_free_flusher(lane) or segment.rows >= self.max_rows * GROWTH_LIMIT)
        ):
            self._seal(lane)

    @staticmethod
    def _write_all(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

    def _retry_after(self) -> float:
        return max(1.0, min(RETRY_MAX_SECONDS, 2 * self.max_delay + 1))

    def _open_segment(self, lane: _Lane) -> _Segment:
        lane.directory.mkdir(parents=True, exist_ok=True)
        self._last_name_ns = max(time.time_ns(), self._last_name_ns + 1)
        name = f"{self._last_name_ns:020d}-{os.getpid()}-{secrets.token_hex(4)}{SEGMENT_SUFFIX}"
        path = lane.directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        segment = _Segment(path, fd=fd)
        lane.open = segment
        lane.timer = asyncio.get_running_loop().call_later(self.max_delay, self._due, lane, segment)
        return segment

    def _has_free_flusher(self, lane: _Lane) -> bool:
        """A flusher not inserting, with no sealed segment already waiting for it."""
        return self.insert_concurrency - len(lane.inserting) > len(lane.sealed)

    def _due(self, lane: _Lane, segment: _Segment) -> None:
        """The batch delay has passed: insert now if a flusher is free, else as soon as one is."""
        lane.timer = None
        segment.due = True
        if lane.open is segment and self._has_free_flusher(lane):
            self._seal(lane)

    def _seal(self, lane: _Lane) -> None:
        if lane.timer is not None:
            lane.timer.cancel()
            lane.timer = None
        segment, lane.open = lane.open, None
        if segment is None:
            return
        lane.sealed.append(segment)
        self._update_gauges(lane)
        lane.wake.set()

    # --- flusher ------------------------------------------------------------------------------------
    async def _flush_loop(self, lane: _Lane) -> None:
        """One insert worker: takes the oldest sealed segment, inserts it, repeats."""
        delay = RETRY_INITIAL_SECONDS
        while True:
            if not lane.sealed and lane.open is not None and lane.open.due:
                self._seal(lane)
            if not lane.sealed:
                if self._stopping:
                    return
                lane.wake.clear()
                await lane.wake.wait()
                continue
            segment = lane.sealed.popleft()
            lane.inserting.append(segment)
            started = time.perf_counter()
            try:
                written, sampled_out = await asyncio.to_thread(self._insert, lane.signal, segment)
            except Exception as exc:
                lane.inserting.remove(segment)
                self.insert_errors += 1
                segment.failures += 1
                metrics.INSERT_ERRORS.labels(lane.signal.value).inc()
                if segment.failures >= QUARANTINE_AFTER and not await asyncio.to_thread(
                    self._readable, lane.signal, segment
                ):
                    await asyncio.to_thread(self._quarantine, lane.signal, segment, str(exc))
                    self._release(lane, segment)
                    continue
                lane.sealed.appendleft(segment)
                log.warning(
                    "segment insert failed signal=%s segment=%s retry_in=%.1fs error=%s",
                    lane.signal.value,
                    segment.path.name,
                    0 if self._stopping else delay,
                    exc,
                )
                if self._stopping:
                    return
                await self._sleep_unless_stopping(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
                continue
            delay = RETRY_INITIAL_SECONDS
            lane.inserting.remove(segment)
            metrics.INSERT_SECONDS.labels(lane.signal.value).observe(time.perf_counter() - started)
            rows = sum(written.values())
            metrics.BATCH_ROWS.labels(lane.signal.value).observe(rows)
            self._count_written(lane.signal, segment, written, sampled_out)
            self._release(lane, segment)
            self.inserted_segments += 1
            self.inserted_rows += rows
            if self.on_written is not None and rows:
                self._notify_written(lane.signal, written)

    @staticmethod
    def _count_written(
        signal: Signal, segment: _Segment, written: dict[str, int], sampled_out: dict[str, int]
    ) -> None:
        """Self-metrics for an inserted segment, per tenant: rows stored (recorded by the engine per insert),
        spans sampling dropped (counted by a second query over sampled segments), and records storage
        refused (e.g. a span whose trace id is not 16 bytes; checking that per span in Python would cost
        ~30 % of ingest): what the tenant sent minus the other two."""
        names = segment.tenant_names  # empty for a segment replayed from a previous run
        for tenant_id, count in written.items():
            metrics.RECORDS_WRITTEN.labels(names.get(tenant_id, ""), signal.value).inc(count)
        for tenant_id, count in sampled_out.items():
            metrics.RECORDS_SAMPLED_OUT.labels(names.get(tenant_id, ""), signal.value).inc(count)
        for tenant_id, sent in segment.tenant_rows.items():
            dropped = sent - written.get(tenant_id, 0) - sampled_out.get(tenant_id, 0)
            if dropped > 0:
                reason = "invalid_in_storage"
                metrics.RECORDS_REJECTED.labels(names[tenant_id], signal.value, reason).inc(dropped)
                log.warning(
                    "records refused by storage validation tenant=%s signal=%s segment=%s dropped=%d",
                    names[tenant_id],
                    signal.value,
                    segment.path.name,
                    dropped,
                )

    def _notify_written(self, signal: Signal, written: dict[str, int]) -> None:
        assert self.on_written is not None
        try:
            self.on_written([tenant_id for tenant_id, count in written.items() if count])
        except Exception:  # a listener's failure must not stop the flusher
            log.exception("on_written callback failed signal=%s", signal.value)

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        assert self._stop_event is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), seconds)

    def _storage(self) -> Any:
        if self._backend is None:
            from ollystack.clickhouse import get_backend

            return get_backend()
        return self._backend

    def _insert(self, signal: Signal, segment: _Segment) -> tuple[dict[str, int], dict[str, int]]:
        """Worker thread: make the segment durable, insert it, read back what it stored and what sampling
        dropped (per tenant id), delete it."""
        if segment.fd is not None:
            os.fsync(segment.fd)
            os.close(segment.fd)
            segment.fd = None
            _fsync_directory(segment.path.parent)
        backend = self._storage()
        token = segment.path.name
        written = backend.insert_segment_by_tenant(signal, segment.path, token, segment.sampled)
        sampled_out: dict[str, int] = {}
        if segment.sampled:
            try:
                sampled_out = backend.sampled_out_by_tenant(segment.path)
            except Exception as exc:  # the data is stored; only the self-metric is missing
                log.warning("counting sampled-out spans failed segment=%s error=%s", segment.path.name, exc)
        segment.path.unlink()
        return written, sampled_out

    def _readable(self, signal: Signal, segment: _Segment) -> bool:
        """Worker thread: False only when ClickHouse answers but cannot parse the segment (corrupt data);
        an engine that is down, full or busy is retried instead."""
        backend = self._storage()
        if not backend.ping():
            return True
        return bool(backend.segment_is_readable(signal, segment.path))

    def _quarantine(self, signal: Signal, segment: _Segment, error: str) -> None:
        """Worker thread: ClickHouse is up but cannot parse this segment (corrupt data): move it aside so
        that the segments behind it are inserted, and report it."""
        target = self.wal_dir / QUARANTINE_DIR / signal.value
        target.mkdir(parents=True, exist_ok=True)
        if segment.fd is not None:
            os.close(segment.fd)
            segment.fd = None
        segment.path.rename(target / segment.path.name)
        _fsync_directory(target)
        metrics.WAL_QUARANTINED.labels(signal.value).inc()
        log.error(
            "WAL segment quarantined signal=%s segment=%s records=%d tenants=%s moved_to=%s error=%s",
            signal.value,
            segment.path.name,
            segment.rows,
            ",".join(sorted(segment.tenant_names.values())) or "unknown",
            target,
            error,
        )

    def _release(self, lane: _Lane, segment: _Segment) -> None:
        self._wal_bytes -= segment.size
        for tenant_id, size in segment.tenant_bytes.items():
            remaining = self._tenant_bytes.get(tenant_id, 0) - size
            if remaining > 0:
                self._tenant_bytes[tenant_id] = remaining
            else:
                self._tenant_bytes.pop(tenant_id, None)
        self._update_gauges(lane)

    def _update_gauges(self, lane: _Lane) -> None:
        metrics.WAL_SEGMENTS.labels(lane.signal.value).set(len(lane.sealed) + len(lane.inserting))
        metrics.WAL_BYTES.labels(lane.signal.value).set(
            sum(s.size for s in (*lane.sealed, *lane.inserting)) + (lane.open.size if lane.open else 0)
        )

    # --- recovery -------------------------------------------------------------------------------------
    def _recover(self, signal: Signal, directory: Path) -> list[_Segment]:
        """Worker thread: leftover segments in order, torn tails cut off, empty ones removed, unreadable
        ones quarantined."""
        if not directory.is_dir():
            return []
        segments = []
        for path in sorted(directory.glob(f"*{SEGMENT_SUFFIX}")):
            data = path.read_bytes()
            valid = valid_prefix_length(data)
            if 0 < valid < len(data):
                log.warning(
                    "WAL segment had a torn last frame segment=%s kept_bytes=%d dropped_bytes=%d",
                    path.name,
                    valid,
                    len(data) - valid,
                )
                with open(path, "r+b") as fh:
                    fh.truncate(valid)
                    fh.flush()
                    os.fsync(fh.fileno())
            if valid == 0:
                if data:
                    self._quarantine(signal, _Segment(path), "no whole frame at the start of the segment")
                else:
                    path.unlink()
                continue
            # which tenants (and whether any sampled one) wrote it is not known: apply the sampling rule
            segments.append(_Segment(path, size=valid, sampled=signal is Signal.TRACES))
        return segments


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
