"""Latency sketches as bfloat16 histograms instead of t-digests (``ollystack.clickhouse.views.digest``): the
service pages, their charts and the service map merge hundreds of sketches per read, and histograms merge
faster (the topology over 6 h of 10 M spans: 77 → 27 ms).

A stored t-digest cannot be turned into a histogram exactly. The per-minute RED and the topology (kept 90
days) are converted row by row: each t-digest is read at 190 levels (every percent, and every per-mille above
the 90th percentile) and those values are stored as a histogram, each weighted by the share of requests it
stands for, so that quantiles read afterwards stay within the t-digest's own error. The per-second RED (kept
two days, read by alert rules) is filled again from the spans, and the 5-minute and hourly rollups from the
converted minutes.

Each converted table is copied into ``<table>_bf16``, dropped, created again and filled back, so that it
keeps its name (and, on a cluster, its replication path). Stop ingest while it runs on a ClickHouse server
(``serve`` runs migrations before it takes data): the views that feed these tables are dropped meanwhile. A
run that stopped half-way resumes where it stopped: the statements are chosen from what the database holds.
"""

from __future__ import annotations

import re
from dataclasses import replace

from ollystack.clickhouse import views
from ollystack.clickhouse.backends import Backend
from ollystack.clickhouse.tables import SchemaOptions, TableDef, local_name, on_cluster, render, render_drop

OLD_SKETCH = "quantilesTDigestWeighted"
TEMPORARY = "_bf16"
# the levels at which a stored t-digest is read, and the share of the requests each value stands for
LEVELS = [round((i + 0.5) / 100, 4) for i in range(90)]
LEVELS += [round(0.9 + (i + 0.5) / 1000, 4) for i in range(100)]
SHARES = [0.01] * 90 + [0.001] * 100
_VIEW = re.compile(r"CREATE MATERIALIZED VIEW IF NOT EXISTS (\S+).* TO (\S+) AS")


def _converted() -> list[tuple[TableDef, str, str]]:
    """The tables converted from their t-digests: definition, key columns (in table order), count column."""
    return [
        (views.service_metrics_1m_def(), "tenant_id, service_name, entry, operation, minute", "requests"),
        (views.service_topology_def(), "tenant_id, minute, caller, callee, instrumented", "calls"),
    ]


def operations(options: SchemaOptions, backend: Backend | None = None) -> list[str]:
    insert_settings = " SETTINGS distributed_foreground_insert = 1" if options.cluster else ""
    steps: list[str] = []
    for table, keys, count in _converted():
        copy = replace(table, name=table.name + TEMPORARY)
        converting = _sketch(backend, table.name, options) == OLD_SKETCH
        if converting:
            steps += [
                *render_drop(copy.name, options),
                *render(copy, options),
                _convert(table.name, copy.name, keys, count) + insert_settings,
                *render_drop(table.name, options),
            ]
        if converting or _sketch(backend, copy.name, options):
            steps += [
                *render(table, options),
                f"TRUNCATE TABLE IF EXISTS {local_name(table.name, options)}{on_cluster(options)} SYNC",
                f"INSERT INTO {table.name} SELECT * FROM {copy.name}{insert_settings}",
                *render_drop(copy.name, options),
            ]
    current = views.DIGEST_FUNCTION
    red_1s = views.service_metrics_1s_def()
    if _sketch(backend, red_1s.name, options) != current:
        steps += [
            *render_drop(red_1s.name, options),
            *render(red_1s, options),
            views.service_metrics_1s_backfill() + insert_settings,
        ]
    for name, seconds in views.RED_ROLLUPS:
        if _sketch(backend, name, options) != current:
            steps += [
                *render_drop(name, options),
                *render(replace(views.service_metrics_1m_def(), name=name), options),
                views.red_rollup_backfill(name, seconds) + insert_settings,
            ]
    created = [
        *views.service_metrics_1m(options),
        *views.service_metrics_rollups(options),
        *views.service_metrics_1s(options),
        *views.service_topology(options),
    ]
    targets = {local_name(t.name, options) for t, _, _ in _converted()}
    targets |= {local_name(red_1s.name, options)} | {local_name(n, options) for n, _ in views.RED_ROLLUPS}
    feeding = [m.group(1) for s in created if (m := _VIEW.match(s)) and m.group(2) in targets]
    drops = [f"DROP VIEW IF EXISTS {name}{on_cluster(options)} SYNC" for name in feeding] if steps else []
    # every table and view again (each IF NOT EXISTS): the views come back even after a run that stopped
    return [*drops, *steps, *created]


def _convert(table: str, copy: str, keys: str, count: str) -> str:
    state = views.digest_state("sample.1", f"{count} * sample.2")
    levels = ", ".join(str(level) for level in LEVELS)
    shares = ", ".join(str(share) for share in SHARES)
    return f"""INSERT INTO {copy} ({keys}, {count}, errors, duration_ns_sum, duration)
SELECT {keys}, {count}, errors, duration_ns_sum,
    {state} AS duration
FROM (
    SELECT {keys}, sum({count}) AS {count}, sum(errors) AS errors, sum(duration_ns_sum) AS duration_ns_sum,
        arrayZip({OLD_SKETCH}Merge({levels})(duration), [{shares}]) AS samples
    FROM {table}
    GROUP BY {keys}
)
ARRAY JOIN samples AS sample
GROUP BY {keys}, {count}, errors, duration_ns_sum"""


def _sketch(backend: Backend | None, table: str, options: SchemaOptions) -> str | None:
    """The aggregate function of ``table``'s latency column (None: no such table). Without a backend every
    table is taken to hold t-digests, so that every statement is rendered."""
    if backend is None:
        return OLD_SKETCH
    rows = backend.query(
        "SELECT type FROM system.columns WHERE database = currentDatabase() AND table = {table:String} "
        "AND name = 'duration'",
        {"table": local_name(table, options)},
    ).rows
    return str(rows[0][0]).removeprefix("AggregateFunction(").split("(", 1)[0] if rows else None
