"""Spans, logs and metric points, in their current shape (a fresh install needs no later ALTER)."""

from ollystack.clickhouse.tables import SchemaOptions, render
from ollystack.clickhouse.tables.logs import logs_def
from ollystack.clickhouse.tables.metric_points import metric_points_def
from ollystack.clickhouse.tables.spans import spans_def


def operations(options: SchemaOptions) -> list[str]:
    tables = (spans_def(), logs_def(), metric_points_def())
    return [statement for table in tables for statement in render(table, options)]
