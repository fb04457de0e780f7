"""Spans, logs and metric points."""

from ollystack.clickhouse.tables.logs import logs_table
from ollystack.clickhouse.tables.metric_points import metric_points_table
from ollystack.clickhouse.tables.spans import spans_table

OPERATIONS = [spans_table(), logs_table(), metric_points_table()]
