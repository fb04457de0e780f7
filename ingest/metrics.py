"""The ingest path's own metrics (Prometheus text format on ``OLLYSTACK_METRICS_PORT``, path ``/metrics``).

A registry of its own, so that tests and the two entry points (``serve``, ``ingestd``) never collide with
whatever else registers in the default one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_asgi_app
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

RECORDS_RECEIVED = Counter(
    "ollystack_ingest_received_records",
    "Records (spans, log records, metric data points) in authenticated, well-formed requests.",
    ["tenant", "signal"],
    registry=REGISTRY,
)
RECORDS_ACCEPTED = Counter(
    "ollystack_ingest_accepted_records",
    "Records written to the WAL and acknowledged to the sender.",
    ["tenant", "signal"],
    registry=REGISTRY,
)
RECORDS_REJECTED = Counter(
    "ollystack_ingest_rejected_records",
    "Records refused, by reason (backpressure, throttled, invalid).",
    ["tenant", "signal", "reason"],
    registry=REGISTRY,
)
REQUESTS = Counter(
    "ollystack_ingest_requests",
    "Export requests by protocol (grpc, http), signal and outcome (OTLP/HTTP status code or gRPC code name).",
    ["protocol", "signal", "status"],
    registry=REGISTRY,
)
BATCH_ROWS = Histogram(
    "ollystack_ingest_batch_rows",
    "Rows inserted into ClickHouse per WAL segment.",
    ["signal"],
    buckets=(1, 10, 100, 1_000, 5_000, 10_000, 20_000, 50_000, 100_000, 1_000_000),
    registry=REGISTRY,
)
INSERT_SECONDS = Histogram(
    "ollystack_ingest_insert_seconds",
    "Time to insert one WAL segment into ClickHouse.",
    ["signal"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
RECORDS_WRITTEN = Counter(
    "ollystack_ingest_written_records",
    "Records inserted into ClickHouse (tenant is empty for segments replayed from a previous run).",
    ["tenant", "signal"],
    registry=REGISTRY,
)
INSERT_ERRORS = Counter(
    "ollystack_ingest_insert_errors",
    "Failed segment inserts (the segment is kept and retried).",
    ["signal"],
    registry=REGISTRY,
)
WAL_BYTES = Gauge(
    "ollystack_ingest_wal_bytes",
    "Bytes in WAL segments not yet inserted into ClickHouse.",
    ["signal"],
    registry=REGISTRY,
)
WAL_SEGMENTS = Gauge(
    "ollystack_ingest_wal_segments",
    "Sealed WAL segments waiting for insert.",
    ["signal"],
    registry=REGISTRY,
)

RECORDS_SAMPLED_OUT = Counter(
    "ollystack_ingest_sampled_out_records",
    "Spans accepted but not stored because trace sampling dropped them (the kept ones carry their weight).",
    ["tenant", "signal"],
    registry=REGISTRY,
)
WAL_QUARANTINED = Counter(
    "ollystack_ingest_wal_quarantined_segments",
    "WAL segments moved to quarantine/ because ClickHouse refused them repeatedly while reachable.",
    ["signal"],
    registry=REGISTRY,
)


class _WalAge(Collector):
    """Age of the oldest record waiting in the WAL, computed when scraped."""

    def __init__(self) -> None:
        self.source: Callable[[], dict[str, float]] | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "ollystack_ingest_wal_oldest_age_seconds",
            "Seconds since the oldest record still waiting in the WAL was acknowledged (0 when empty).",
            labels=["signal"],
        )
        for signal, age in (self.source() if self.source else {}).items():
            family.add_metric([signal], age)
        yield family


WAL_AGE = _WalAge()
REGISTRY.register(WAL_AGE)

asgi_app = make_asgi_app(registry=REGISTRY)

# --- quotas (ingest.quotas) ------------------------------------------------------------------------
USAGE_TODAY_RECORDS = Gauge(
    "ollystack_ingest_usage_today_records",
    "Records counted against the tenant's daily cap today (UTC), as of this process's last request of the "
    "tenant. With the Redis store every replica reports the shared total: aggregate with max, not sum.",
    ["tenant"],
    registry=REGISTRY,
)
USAGE_TODAY_BYTES = Gauge(
    "ollystack_ingest_usage_today_bytes",
    "Uncompressed OTLP bytes counted against the tenant's daily cap today (UTC); see the records gauge.",
    ["tenant"],
    registry=REGISTRY,
)
QUOTA_STORE_ERRORS = Counter(
    "ollystack_ingest_quota_store_errors",
    "Requests admitted without a quota decision because the quota store failed (quotas fail open).",
    ["store"],
    registry=REGISTRY,
)
