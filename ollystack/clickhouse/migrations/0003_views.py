"""Materialized views: RED per service and operation, error aggregates, service topology, log volume and
metric anomalies, maintained on insert (see ``ollystack.clickhouse.views``). Views start with the data
inserted after they exist; nothing is rewritten."""

from ollystack.clickhouse.tables import SchemaOptions
from ollystack.clickhouse.views import all_views


def operations(options: SchemaOptions) -> list[str]:
    return all_views(options)
