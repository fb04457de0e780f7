"""Migration 0007: an install whose aggregates hold t-digests gets bfloat16 histograms with the same figures.

The old install is made by the migrations themselves with ``views.DIGEST_FUNCTION`` set back to the
t-digest, in a process of its own (chdb allows one engine per process), then spans go in through the old
views and the migration converts what they stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ollystack.clickhouse import views
from tests.clickhouse.test_schema import run_in_own_process

T_DIGEST = "quantilesTDigestWeighted"
MIGRATION = "0007_latency_histograms"
TABLES = (
    "service_metrics_1m",
    "service_metrics_5m",
    "service_metrics_1h",
    "service_metrics_1s",
    "service_topology",
)
SPANS = 2000

# requests to cart (root server spans, 2..2000 ms) and its calls to the database (client spans, 0.5..1000 ms)
INSERT_SPANS = """
INSERT INTO spans (tenant_id, timestamp, duration_ns, trace_id, span_id, parent_span_id, name, kind,
                   resource_attributes, attributes)
SELECT 'acme', now64(9) - INTERVAL 20 MINUTE + toIntervalMillisecond(number * 100),
       if(number % 2, (number + 1) * 1000000, (number + 1) * 500000),
       toFixedString(leftPad(toString(number), 16, '0'), 16),
       toFixedString(leftPad(toString(number), 8, '0'), 8), if(number % 2, '', 'parent01'),
       if(number % 2, 'GET /cart', 'SELECT cart'), if(number % 2, 2, 3), map('service.name', 'cart'),
       if(number % 2, map(), map('db.system', 'postgresql'))
FROM numbers({first}, {count})"""


def _quantiles(backend: Any, table: str, where: str = "1") -> list[float]:
    merge = views.DIGEST_FUNCTION + "Merge(0.5, 0.95, 0.99)"
    return [
        float(q) for q in backend.query(f"SELECT {merge}(duration) FROM {table} WHERE {where}").rows[0][0]
    ]


def histogram_upgrade_scenario(workdir: Path) -> dict[str, Any]:
    from ollystack.clickhouse import EmbeddedBackend
    from ollystack.clickhouse.migrate import apply_migrations, load_migration, migration_statements
    from ollystack.clickhouse.tables import SchemaOptions, render
    from ollystack.clickhouse.tables.migrations_table import ch_migrations_def

    backend = EmbeddedBackend(workdir / "clickhouse")
    options = SchemaOptions()
    new_digest, views.DIGEST_FUNCTION = views.DIGEST_FUNCTION, T_DIGEST  # the previous release's sketch
    try:
        for statement in render(ch_migrations_def(), options):
            backend.command(statement)
        backend.command(f"INSERT INTO ch_migrations (name) VALUES ('{MIGRATION}')")  # not yet released
        apply_migrations(backend, log=lambda _m: None, options=options)
        backend.command(INSERT_SPANS.format(first=0, count=SPANS))
    finally:
        views.DIGEST_FUNCTION = new_digest
    before = {
        t: backend.query(f"SELECT type FROM system.columns WHERE table = '{t}' AND name = 'duration'").rows[
            0
        ][0]
        for t in TABLES
    }
    backend.command(f"DELETE FROM ch_migrations WHERE name = '{MIGRATION}'")
    applied = apply_migrations(backend, log=lambda _m: None, options=options)
    rerun = migration_statements(load_migration(MIGRATION), options, backend)
    for statement in rerun:  # what a second run would do: create what exists, nothing else
        backend.command(statement)
    after = {
        t: backend.query(f"SELECT type FROM system.columns WHERE table = '{t}' AND name = 'duration'").rows[
            0
        ][0]
        for t in TABLES
    }
    exact_server = backend.query(
        "SELECT quantilesExact(0.5, 0.95, 0.99)(duration_ns) FROM spans WHERE kind = 2"
    ).rows[0][0]
    exact_client = backend.query(
        "SELECT quantilesExact(0.5, 0.95, 0.99)(duration_ns) FROM spans WHERE kind = 3"
    ).rows[0][0]
    figures = {t: _quantiles(backend, t, "entry = 1") for t in TABLES if t != "service_topology"}
    figures["service_topology"] = _quantiles(backend, "service_topology")
    counts = {t: _counts(backend, t) for t in TABLES}
    backend.command(INSERT_SPANS.format(first=SPANS, count=10))  # the views write histograms again
    counts_later = {t: _counts(backend, t) for t in TABLES}
    leftovers = backend.query("SELECT name FROM system.tables WHERE name LIKE '%_bf16%'").rows
    backend.close()
    return {
        "applied": applied,
        "rerun_converts": [s[:60] for s in rerun if not s.startswith("CREATE ")],
        "before": before,
        "after": after,
        "exact_server": [float(q) for q in exact_server],
        "exact_client": [float(q) for q in exact_client],
        "figures": figures,
        "counts": counts,
        "counts_later": counts_later,
        "leftovers": leftovers,
    }


def _counts(backend: Any, table: str) -> float:
    column = "calls" if table == "service_topology" else "requests"
    return float(backend.query(f"SELECT sum({column}) FROM {table}").rows[0][0])


def test_t_digests_become_histograms_with_the_same_figures(tmp_path: Path) -> None:
    result = run_in_own_process("histogram_upgrade_scenario", tmp_path, module=__name__)
    assert result["applied"] == [MIGRATION]
    assert result["rerun_converts"] == []  # converted once: a second run only (re)creates what exists
    assert all("quantilesTDigestWeighted" in t for t in result["before"].values()), result["before"]
    assert all("quantilesBFloat16Weighted" in t for t in result["after"].values()), result["after"]
    assert result["leftovers"] == []
    for table, figures in result["figures"].items():
        exact = result["exact_client" if table == "service_topology" else "exact_server"]
        for got, want in zip(figures, exact, strict=True):
            assert abs(got - want) <= 0.05 * want, (table, figures, exact)
    # every request counted once, from the old rows, and the views count new spans after the conversion
    assert result["counts"] == {
        "service_metrics_1m": SPANS,
        "service_metrics_5m": SPANS,
        "service_metrics_1h": SPANS,
        "service_metrics_1s": SPANS,
        "service_topology": SPANS / 2,
    }
    assert result["counts_later"] == {
        t: n + (5 if t == "service_topology" else 10) for t, n in result["counts"].items()
    }
