"""RED rollups: ranges cut into hours, 5-minute buckets and minutes, the rollup tables filled by their
views, and reads through them giving the per-minute view's figures."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ollystack.clickhouse import Backend, get_backend, rollups
from ollystack.clickhouse.rollups import MIN_ROWS, pieces, red_rows
from ollystack.telemetry.services import operation_red, service_red
from tests.telemetry.test_red_series import SERVER, Shop, insert, trace_id

NS = 1_000_000_000
MS = 1_000_000
H_S = 1_699_999_200  # an hour boundary
H = H_S * NS


def test_a_range_is_cut_coarsest_first() -> None:
    assert pieces(H_S, H_S + 24 * 3600) == [("service_metrics_1h", H_S, H_S + 24 * 3600)]
    assert pieces(H_S + 60, H_S + 13 * 3600 + 600) == [
        ("service_metrics_1m", H_S + 60, H_S + 3600),  # 11 five-minute rows: not worth a read
        ("service_metrics_1h", H_S + 3600, H_S + 13 * 3600),
        ("service_metrics_1m", H_S + 13 * 3600, H_S + 13 * 3600 + 600),
    ]
    assert pieces(H_S + 60, H_S + 7260) == [
        ("service_metrics_1m", H_S + 60, H_S + 300),
        ("service_metrics_5m", H_S + 300, H_S + 7200),
        ("service_metrics_1m", H_S + 7200, H_S + 7260),
    ]
    assert pieces(H_S + 60, H_S + 240) == [("service_metrics_1m", H_S + 60, H_S + 240)]
    assert pieces(H_S, H_S) == []


def test_a_rollup_is_read_only_for_enough_of_its_rows() -> None:
    # each piece is one more table to plan and read: fewer than MIN_ROWS coarse rows are read as finer ones
    assert MIN_ROWS == 12
    assert pieces(H_S, H_S + 11 * 3600) == [("service_metrics_5m", H_S, H_S + 11 * 3600)]
    assert pieces(H_S, H_S + 12 * 3600) == [("service_metrics_1h", H_S, H_S + 12 * 3600)]
    assert pieces(H_S + 60, H_S + 3660) == [("service_metrics_1m", H_S + 60, H_S + 3660)]  # the last hour
    assert pieces(H_S, H_S + 3600) == [("service_metrics_5m", H_S, H_S + 3600)]


def test_chart_buckets_only_read_rollups_that_fit_them() -> None:
    # 5-minute buckets: no hourly rows; 2-minute buckets: minutes only
    assert pieces(H_S, H_S + 7200, bucket_s=300) == [("service_metrics_5m", H_S, H_S + 7200)]
    assert pieces(H_S, H_S + 7200, bucket_s=120) == [("service_metrics_1m", H_S, H_S + 7200)]


def test_ranges_of_rows_start_on_a_minute() -> None:
    with pytest.raises(ValueError, match="minute"):
        pieces(H_S + 1, H_S + 120)


@pytest.fixture
def two_hours(clickhouse: Backend, tmp_path: Path, tenant_id: str) -> str:
    """A request about every 40 s for two hours and a half, some failing, with random durations."""
    rng = random.Random(7)
    shop = Shop()
    for n in range(225):
        at = H + n * 40 * NS + rng.randrange(30_000) * MS
        shop.checkout(trace_id(n), at, rng.randrange(5, 900), [rng.randrange(1, 400)], fail=n % 9 == 0)
    shop.span("frontend", trace_id(999), 1, 0, "GET /", SERVER, H + 7000 * NS, 12)
    insert(clickhouse, tmp_path, tenant_id, shop.request)
    return tenant_id


def _from_minutes(tenant: str, key: str, where: str, start_ns: int, end_ns: int) -> dict[str, tuple]:
    """Requests and errors per ``key`` summed from the per-minute view alone."""
    rows = (
        get_backend()
        .query(
            f"SELECT {key}, sum(requests), sum(errors) FROM service_metrics_1m "
            f"WHERE tenant_id = {{t:String}} AND {where} "
            "AND minute >= toStartOfMinute(fromUnixTimestamp64Nano({s:Int64}, 'UTC')) "
            f"AND minute < fromUnixTimestamp64Nano({{e:Int64}}, 'UTC') GROUP BY {key}",
            {"t": tenant, "s": start_ns, "e": end_ns},
        )
        .rows
    )
    return {name: (float(requests), float(errors)) for name, requests, errors in rows}


def test_the_views_fill_every_rollup(two_hours: str) -> None:
    for table in ("service_metrics_5m", "service_metrics_1h"):
        total = (
            get_backend()
            .query(f"SELECT sum(requests) FROM {table} WHERE tenant_id = {{t:String}}", {"t": two_hours})
            .rows[0][0]
        )
        assert total == 451  # 225 checkouts of two spans and one more request


@pytest.mark.parametrize("min_rows", [MIN_ROWS, 1])  # 1: every rollup is read, the hourly one too
@pytest.mark.parametrize(
    ("start_s", "end_s"),
    [(0, 9000), (90, 8000), (610, 3590), (3600, 7200), (1234, 1290), (7199, 7201)],
)
def test_reads_through_rollups_match_the_minutes(
    two_hours: str, start_s: int, end_s: int, min_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollups, "MIN_ROWS", min_rows)
    start, end = H + start_s * NS, H + end_s * NS
    services = {r.service: (r.requests, r.errors) for r in service_red(two_hours, start, end)}
    assert services == _from_minutes(two_hours, "service_name", "entry = 1", start, end)
    assert services  # every range holds requests
    operations = {
        r.operation: (r.requests, r.errors) for r in operation_red(two_hours, "payments", start, end)
    }
    assert operations == _from_minutes(two_hours, "operation", "service_name = 'payments'", start, end)


def test_quantiles_through_rollups_stay_close_to_the_exact_ones(
    two_hours: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollups, "MIN_ROWS", 1)  # through the hourly rows too
    exact = (
        get_backend()
        .query(
            "SELECT quantiles(0.5, 0.95)(duration_ns) FROM spans WHERE tenant_id = {t:String} "
            "AND service_name = 'frontend'",
            {"t": two_hours},
        )
        .rows[0][0]
    )
    (frontend,) = [r for r in service_red(two_hours, H, H + 9000 * NS) if r.service == "frontend"]
    assert frontend.p50_ns == pytest.approx(exact[0], rel=0.05)
    assert frontend.p95_ns == pytest.approx(exact[1], rel=0.05)


def test_red_rows_need_a_tenant() -> None:
    with pytest.raises(ValueError, match="tenant"):
        red_rows("", H, H + NS, ["count()"])
