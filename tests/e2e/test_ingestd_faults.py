"""ingestd under faults, in the production profile with real processes (see ``tests/e2e/production.py``).

- kill -9 in the middle of a stream: nothing acknowledged is lost, nothing is stored twice;
- ClickHouse unreachable: ingest goes on into the WAL, which survives a stop and drains exactly once later;
- changes made in the Django admin reach running daemons within seconds: a revoked key is refused, a new
  rate limit is enforced (across replicas sharing Redis); losing the database does not stop ingest.
"""

from __future__ import annotations

import itertools
import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.e2e.production import (
    ExportStream,
    GrpcTraces,
    Ingestd,
    Outcome,
    ProductionStack,
    TenantKeys,
    in_parallel,
    production_stack,
    sdk_spans,
    span_exporter,
    span_id_hex,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

SPANS_PER_BATCH = 20
WRITTEN = "ollystack_ingest_written_records_total"
WAL_BYTES = "ollystack_ingest_wal_bytes"
TENANT_CHANGE = "/admin/tenants/tenant/{}/change/"
INGEST_KEYS = "/admin/tenants/ingestkey/"
BATCHES = itertools.count()  # span ids stay unique across the requests of a test


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[ProductionStack]:
    with production_stack(tmp_path) as production:
        yield production


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port nothing listens on: bound but never listening, so connections are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def stored_copies(daemon: Ingestd, tenant: TenantKeys) -> dict[str, int]:
    """Span id (hex) → number of rows holding it, for one tenant (the daemon must be stopped)."""
    rows = daemon.clickhouse_query(
        "SELECT lower(hex(span_id)) AS span, count() AS copies FROM spans "
        "WHERE tenant_id = {tenant:String} GROUP BY span",
        tenant=tenant.tenant_id,
    )
    return {row["span"]: int(row["copies"]) for row in rows}


def span_ids(batches: list[int]) -> set[str]:
    return {span_id_hex(batch, i) for batch in batches for i in range(SPANS_PER_BATCH)}


def written(daemon: Ingestd, **labels: str) -> float:
    return daemon.metrics().value(WRITTEN, signal="traces", **labels)


def export(client: GrpcTraces, tenant: TenantKeys, spans: int = SPANS_PER_BATCH) -> Outcome:
    return client.export(sdk_spans(next(BATCHES), spans), tenant.ingest_key)


def wait_for_code(
    client: GrpcTraces, tenant: TenantKeys, code: grpc.StatusCode, timeout: float, what: str, spans: int = 1
) -> Outcome:
    """Export until the daemon answers ``code``; that answer."""

    def attempt() -> Outcome | None:
        outcome = export(client, tenant, spans)
        return outcome if outcome.code == code else None

    result: Outcome = wait_until(attempt, timeout, what)
    return result


def more_acks(stream: ExportStream, count: int, what: str) -> None:
    target = len(stream.acked) + count
    wait_until(lambda: len(stream.acked) >= target, 20, what)


def test_kill_9_mid_stream_loses_no_acknowledged_span_and_stores_none_twice(stack: ProductionStack) -> None:
    tenant, daemon = in_parallel(lambda: stack.create_tenant("crashy"), stack.ingestd)
    daemon.start()
    stream = ExportStream(span_exporter(daemon, tenant.ingest_key), SPANS_PER_BATCH).start()
    try:
        for _kill in range(3):
            more_acks(stream, 15, "batches acknowledged after a (re)start")
            wait_until(lambda: written(daemon) > 0, 10, "rows inserted since the (re)start")
            time.sleep(random.uniform(0, 0.3))  # land anywhere in the insert cycle
            daemon.kill()
            stream.pause()  # the batch in flight at the kill has finished, acknowledged or not
            daemon.start()
            stream.resume()
        more_acks(stream, 15, "batches acknowledged after the last restart")
    finally:
        stream.stop()
    assert daemon.stop() == 0, "ingestd did not stop cleanly on SIGTERM"

    copies = stored_copies(daemon, tenant)
    twice = {span: n for span, n in copies.items() if n > 1}
    assert not twice, f"{len(twice)} spans stored more than once, e.g. {sorted(twice.items())[:5]}"
    lost = span_ids(stream.acked) - copies.keys()
    assert not lost, f"{len(lost)} acknowledged spans are missing, e.g. {sorted(lost)[:5]}"
    assert copies.keys() <= span_ids(list(range(stream.sent))), "spans that were never sent are stored"
    assert "replay" in daemon.log_text().lower(), (
        "no restart found WAL segments to replay: the kills hit nothing"
    )


def test_clickhouse_unreachable_wal_grows_survives_sigterm_and_drains_exactly_once(
    stack: ProductionStack, closed_port: int
) -> None:
    unreachable = f"127.0.0.1:{closed_port}"
    tenant, daemon = in_parallel(
        lambda: stack.create_tenant("patient"),
        lambda: stack.ingestd(migrated=False, OLLYSTACK_CLICKHOUSE_URL=f"clickhouse://{unreachable}"),
    )
    daemon.start()
    exporter = span_exporter(daemon, tenant.ingest_key)
    growth: list[tuple[float, int]] = []
    batches = list(range(40))
    for batch in batches:
        result = exporter.export(sdk_spans(batch, SPANS_PER_BATCH))
        assert result == SpanExportResult.SUCCESS, f"batch {batch} not acknowledged while ClickHouse is down"
        if batch in (19, 39):
            time.sleep(0.2)  # the batch delay: the open segment is sealed and tried
            growth.append(
                (daemon.metrics().value(WAL_BYTES, signal="traces"), sum(daemon.wal_files().values()))
            )
    exporter.shutdown()

    (gauge_half, files_half), (gauge_end, files_end) = growth
    assert 0 < gauge_half < gauge_end, f"{WAL_BYTES} does not grow: {growth}"
    assert 0 < files_half < files_end, f"the files under {daemon.wal_dir} do not grow: {growth}"
    assert written(daemon) == 0
    wait_until(
        lambda: any(
            unreachable in line and "fail" in line.lower() for line in daemon.log_text().splitlines()
        ),
        10,
        f"an insert failure naming the unreachable server {unreachable} in the log",
    )

    assert daemon.stop() == 0, "ingestd did not stop cleanly on SIGTERM while ClickHouse is down"
    left = sum(daemon.wal_files().values())
    assert left >= gauge_end, (
        f"the WAL did not survive the stop: {left} bytes on disk, {gauge_end} acknowledged"
    )
    segments = {path: path.read_bytes() for path in daemon.wal_files()}

    stack.migrate_clickhouse(daemon.var_dir)
    daemon.start(OLLYSTACK_CLICKHOUSE_URL="")  # the embedded engine, same var directory
    expected = len(batches) * SPANS_PER_BATCH
    wait_until(lambda: written(daemon) >= expected, 20, f"{expected} replayed spans written")
    wait_until(lambda: not daemon.wal_files(), 10, "an empty WAL after the replay")
    assert daemon.stop() == 0
    assert stored_copies(daemon, tenant) == dict.fromkeys(span_ids(batches), 1)

    # A crash between a segment's INSERT and its deletion leaves it behind: the next start inserts it again,
    # with the same deduplication token, and ClickHouse must drop the repeat.
    for path, data in segments.items():
        path.write_bytes(data)
    daemon.start()
    wait_until(lambda: not daemon.wal_files(), 10, "an empty WAL after replaying inserted segments")
    assert daemon.stop() == 0
    copies = stored_copies(daemon, tenant)
    assert copies.keys() == span_ids(batches)
    twice = sum(n > 1 for n in copies.values())
    assert not twice, f"{twice} spans stored again when segments already inserted were replayed"


def test_revoking_in_the_admin_reaches_the_daemon_and_losing_the_database_does_not_stop_ingest(
    stack: ProductionStack,
) -> None:
    acme, beta, daemon, web, _ = in_parallel(
        lambda: stack.create_tenant("acme"),
        lambda: stack.create_tenant("beta"),
        lambda: stack.ingestd().start(),
        lambda: stack.web().start(),
        stack.create_superuser,
    )
    client = GrpcTraces(daemon.grpc_target)
    ok, unauthenticated = grpc.StatusCode.OK, grpc.StatusCode.UNAUTHENTICATED
    wait_for_code(client, acme, ok, 10, "acme's key accepted")
    wait_for_code(client, beta, ok, 10, "beta's key accepted")

    admin = web.admin()
    ids = admin.selected_ids(INGEST_KEYS, acme.ingest_prefix)
    assert len(ids) == 1, ids
    assert "Revoked 1 key" in admin.action(INGEST_KEYS, "revoke", ids)
    refused = wait_for_code(client, acme, unauthenticated, 5, "the key revoked in the admin refused")
    assert "revoked" in refused.details, refused
    assert export(client, beta).ok

    beta_before = written(daemon, tenant="beta")
    stack.drop_database()
    wait_until(
        lambda: f'"{stack.database}" does not exist' in daemon.log_text(),
        10,
        "a key refresh failing for good",
    )
    deadline = time.monotonic() + 2.5  # more than two refresh intervals without a database
    sent = 0
    while time.monotonic() < deadline:
        assert export(client, beta).ok, "a known key was refused after the database went away"
        sent += SPANS_PER_BATCH
        assert export(client, acme).code == unauthenticated, "a revoked key came back without a database"
        time.sleep(0.1)
    wait_until(lambda: written(daemon, tenant="beta") >= beta_before + sent, 10, "beta's spans written")
    client.close()


def test_rate_limit_set_in_the_admin_is_enforced_within_seconds_and_across_replicas(
    stack: ProductionStack,
) -> None:
    rate, burst, window = 100, 100, 3.0
    acme, beta, first, second, web, _ = in_parallel(
        lambda: stack.create_tenant("acme"),
        lambda: stack.create_tenant("beta"),
        lambda: stack.ingestd("ingestd-1").start(),
        lambda: stack.ingestd("ingestd-2").start(),
        lambda: stack.web().start(),
        stack.create_superuser,
    )
    replicas = [GrpcTraces(first.grpc_target), GrpcTraces(second.grpc_target)]
    ok, limited = grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED
    for replica in replicas:
        for tenant in (acme, beta):
            wait_for_code(replica, tenant, ok, 10, f"{tenant.name}'s key accepted")
    assert all(export(replicas[0], acme, 50).ok for _ in range(10)), "acme is limited before any limit"

    web.admin().change(
        TENANT_CHANGE.format(acme.tenant_id),
        rate_limit_records_per_second=str(rate),
        rate_limit_burst=str(burst),
    )
    for replica in replicas:
        refused = wait_for_code(replica, acme, limited, 5, "acme refused over its new rate limit", spans=50)
        assert "rate limit" in refused.details, refused
        assert refused.retry_delay is not None, f"no RetryInfo with {refused}"
        assert 0 < refused.retry_delay <= 2, refused.retry_delay
        assert export(replica, beta).ok, "another tenant was limited"

    accepted, refusals = [0, 0], [0, 0]
    started = time.monotonic()
    while time.monotonic() - started < window:
        for n, replica in enumerate(replicas):
            code = export(replica, acme).code
            assert code in (ok, limited), code
            accepted[n] += SPANS_PER_BATCH if code == ok else 0
            refusals[n] += code == limited
        assert export(replicas[0], beta).ok, "another tenant was limited"
    elapsed = time.monotonic() - started
    for replica in replicas:
        replica.close()

    allowed = burst + rate * elapsed + SPANS_PER_BATCH  # a full bucket, the refill, one request of debt
    assert sum(accepted) <= allowed, (
        f"{sum(accepted)} spans accepted in {elapsed:.1f}s by two replicas, {accepted}: the limit "
        f"({rate}/s, burst {burst}) allows {allowed:.0f}; do the replicas share their counters?"
    )
    assert sum(accepted) >= 0.6 * rate * elapsed, (
        f"only {accepted} accepted: the limit lets too little through"
    )
    assert all(accepted), f"a replica accepted nothing within the limit: {accepted}"
    assert all(refusals), f"a replica refused nothing over the limit: {refusals}"
