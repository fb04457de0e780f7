"""RED per 5 minutes and per hour (``service_metrics_5m``, ``service_metrics_1h``, rolled up from
``service_metrics_1m``) and the longest requests per service and minute (``slowest_requests_1m``), so that
the service pages over hours read a few rows per service instead of every minute or every span.

Fills the new tables from what is stored: the rollups from the per-minute view (fast), the slowest requests
from the spans' entry spans (a read of the spans table's entry-span columns). Stop ingest while it runs on a
ClickHouse server, as rows inserted between the fill and the creation of the views would be counted twice or
not at all (``serve`` runs migrations before it takes data). Safe to re-run: each table is emptied first.
"""

from ollystack.clickhouse.tables import SchemaOptions, local_name, on_cluster
from ollystack.clickhouse.views import (
    RED_ROLLUPS,
    red_rollup_backfill,
    service_metrics_rollups,
    slowest_requests_1m,
    slowest_requests_backfill,
)

_CREATE_VIEW = "CREATE MATERIALIZED VIEW"


def operations(options: SchemaOptions) -> list[str]:
    cluster = on_cluster(options)
    created = [*service_metrics_rollups(options), *slowest_requests_1m(options)]
    tables = [s for s in created if not s.startswith(_CREATE_VIEW)]
    views = [s for s in created if s.startswith(_CREATE_VIEW)]
    names = [name for name, _ in RED_ROLLUPS] + ["slowest_requests_1m"]
    fills = [red_rollup_backfill(name, seconds) for name, seconds in RED_ROLLUPS]
    fills.append(slowest_requests_backfill())
    settings = " SETTINGS distributed_foreground_insert = 1" if options.cluster else ""
    return [
        *[f"DROP VIEW IF EXISTS {name}_mv{cluster} SYNC" for name in names],
        *tables,
        *[f"TRUNCATE TABLE IF EXISTS {local_name(name, options)}{cluster} SYNC" for name in names],
        *[fill + settings for fill in fills],
        *views,
    ]
