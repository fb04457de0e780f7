"""Cluster mode DDL, checked as text (no cluster runs here) and parsed by the engine.

Every table definition renders to a Replicated local table on every node and a Distributed table under the
name queries use; migrations and materialized views follow the same rendering.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from ollystack.clickhouse.migrate import load_migration, migration_names, migration_statements
from ollystack.clickhouse.tables import (
    SchemaOptions,
    TableDef,
    local_name,
    on_cluster,
    render,
    render_alter,
    render_drop,
    render_materialized_view,
)
from ollystack.clickhouse.tables.logs import logs_def
from ollystack.clickhouse.tables.metric_points import metric_points_def
from ollystack.clickhouse.tables.migrations_table import ch_migrations_def
from ollystack.clickhouse.tables.spans import spans_def

CLUSTER = SchemaOptions(cluster="ollystack")
TIERED_CLUSTER = SchemaOptions(
    cluster="ollystack", storage_policy="tiered", warm_after_days=3, cold_after_days=14
)

EXAMPLE = TableDef(
    name="requests_1m",
    columns="""
    tenant_id LowCardinality(String),
    minute DateTime CODEC(Delta(4), ZSTD(1)),
    requests SimpleAggregateFunction(sum, Float64),
""",
    engine="AggregatingMergeTree",
    partition_by="toDate(minute)",
    order_by="(tenant_id, minute)",
    ttl="minute + INTERVAL 90 DAY DELETE",
    tiered_by="minute",
    settings=(("index_granularity", "8192"),),
    sharding_key="cityHash64(tenant_id)",
)


def test_one_server_gets_one_plain_table() -> None:
    assert render(EXAMPLE) == [
        """CREATE TABLE IF NOT EXISTS requests_1m (
    tenant_id LowCardinality(String),
    minute DateTime CODEC(Delta(4), ZSTD(1)),
    requests SimpleAggregateFunction(sum, Float64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toDate(minute)
ORDER BY (tenant_id, minute)
TTL minute + INTERVAL 90 DAY DELETE
SETTINGS index_granularity = 8192"""
    ]


def test_cluster_gets_replicated_local_tables_and_a_distributed_table() -> None:
    assert render(EXAMPLE, TIERED_CLUSTER) == [
        """CREATE TABLE IF NOT EXISTS requests_1m_local ON CLUSTER `ollystack` (
    tenant_id LowCardinality(String),
    minute DateTime CODEC(Delta(4), ZSTD(1)),
    requests SimpleAggregateFunction(sum, Float64)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/requests_1m_local', '{replica}')
PARTITION BY toDate(minute)
ORDER BY (tenant_id, minute)
TTL minute + INTERVAL 90 DAY DELETE,
    minute + toIntervalDay(3) TO VOLUME 'warm',
    minute + toIntervalDay(14) TO VOLUME 'cold'
SETTINGS index_granularity = 8192, storage_policy = 'tiered'""",  # noqa: E501
        """CREATE TABLE IF NOT EXISTS requests_1m ON CLUSTER `ollystack` AS requests_1m_local
ENGINE = Distributed(`ollystack`, currentDatabase(), requests_1m_local, cityHash64(tenant_id))""",
    ]


def test_engine_parameters_follow_the_replication_path() -> None:
    replacing = TableDef(
        "latest",
        "    tenant_id String,\n    version UInt64,",
        "tenant_id",
        "ReplacingMergeTree",
        ("version",),
    )
    assert "ENGINE = ReplacingMergeTree(version)\n" in render(replacing)[0]
    assert (
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/latest_local', "
        "'{replica}', version)\n" in render(replacing, CLUSTER)[0]
    )


def test_bookkeeping_table_snapshot() -> None:
    assert render(ch_migrations_def(), CLUSTER) == [
        """CREATE TABLE IF NOT EXISTS ch_migrations_local ON CLUSTER `ollystack` (
    name String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/ch_migrations_local', '{replica}')
ORDER BY name""",
        """CREATE TABLE IF NOT EXISTS ch_migrations ON CLUSTER `ollystack` AS ch_migrations_local
ENGINE = Distributed(`ollystack`, currentDatabase(), ch_migrations_local, rand())""",
    ]


@pytest.mark.parametrize(
    ("definition", "sharding"),
    [(spans_def, "cityHash64(trace_id)"), (logs_def, "rand()"), (metric_points_def, "rand()")],
)
def test_signal_tables_in_a_cluster(definition: Any, sharding: str) -> None:
    table = definition()
    local, distributed = render(table, TIERED_CLUSTER)
    name = table.name
    assert local.startswith(
        f"CREATE TABLE IF NOT EXISTS {name}_local ON CLUSTER `ollystack` (\n    tenant_id "
    )
    path = f"'/clickhouse/tables/{{shard}}/{{database}}/{name}_local'"
    assert f"ENGINE = ReplicatedMergeTree({path}, '{{replica}}')\n" in local
    assert (
        "TTL toDateTime(timestamp) + toIntervalDay(retention_days) DELETE,\n"
        "    toDateTime(timestamp) + toIntervalDay(3) TO VOLUME 'warm',\n"
        "    toDateTime(timestamp) + toIntervalDay(14) TO VOLUME 'cold'\n" in local
    )
    assert local.endswith("non_replicated_deduplication_window = 1000, storage_policy = 'tiered'")
    assert distributed == (
        f"CREATE TABLE IF NOT EXISTS {name} ON CLUSTER `ollystack` AS {name}_local\n"
        f"ENGINE = Distributed(`ollystack`, currentDatabase(), {name}_local, {sharding})"
    )
    # the same definition on one server: no replication, no moves without a policy
    (single,) = render(table)
    assert single == local.replace(f"{name}_local ON CLUSTER `ollystack`", name).replace(
        f"ReplicatedMergeTree('/clickhouse/tables/{{shard}}/{{database}}/{name}_local', '{{replica}}')",
        "MergeTree",
    ).replace(
        ",\n    toDateTime(timestamp) + toIntervalDay(3) TO VOLUME 'warm',\n"
        "    toDateTime(timestamp) + toIntervalDay(14) TO VOLUME 'cold'",
        "",
    ).replace(", storage_policy = 'tiered'", "")


def test_views_and_alters_target_the_local_tables() -> None:
    select = f"SELECT tenant_id, toStartOfMinute(timestamp) AS minute FROM {local_name('spans', CLUSTER)}"
    assert render_materialized_view("requests_1m_mv", "requests_1m", select, CLUSTER) == (
        "CREATE MATERIALIZED VIEW IF NOT EXISTS requests_1m_mv ON CLUSTER `ollystack` "
        "TO requests_1m_local AS\n"
        "SELECT tenant_id, toStartOfMinute(timestamp) AS minute FROM spans_local"
    )
    assert render_materialized_view("requests_1m_mv", "requests_1m", "SELECT 1") == (
        "CREATE MATERIALIZED VIEW IF NOT EXISTS requests_1m_mv TO requests_1m AS\nSELECT 1"
    )
    assert render_alter("spans", ["ADD COLUMN IF NOT EXISTS x UInt8"], CLUSTER, distributed_too=True) == [
        "ALTER TABLE spans_local ON CLUSTER `ollystack`\n    ADD COLUMN IF NOT EXISTS x UInt8",
        "ALTER TABLE spans ON CLUSTER `ollystack`\n    ADD COLUMN IF NOT EXISTS x UInt8",
    ]
    assert render_alter("spans", ["MODIFY TTL x"], CLUSTER, distributed_too=False) == [
        "ALTER TABLE spans_local ON CLUSTER `ollystack`\n    MODIFY TTL x"
    ]
    assert render_alter("spans", ["ADD COLUMN x UInt8"], distributed_too=True) == [
        "ALTER TABLE spans\n    ADD COLUMN x UInt8"
    ]
    assert render_drop("spans_copy", CLUSTER) == [
        "DROP TABLE IF EXISTS spans_copy ON CLUSTER `ollystack` SYNC",
        "DROP TABLE IF EXISTS spans_copy_local ON CLUSTER `ollystack` SYNC",
    ]
    assert render_drop("spans_copy") == ["DROP TABLE IF EXISTS spans_copy SYNC"]
    assert on_cluster() == ""
    assert on_cluster(CLUSTER) == " ON CLUSTER `ollystack`"


@pytest.mark.parametrize("name", migration_names())
def test_every_migration_runs_on_the_cluster(name: str, clickhouse: Any) -> None:
    """Each statement of each migration names the cluster (data copies go through Distributed tables and
    wait for the shards), touches only local tables or their Distributed twins, and is valid ClickHouse (the
    engine parses it: EXPLAIN AST)."""
    statements = migration_statements(load_migration(name), TIERED_CLUSTER)
    assert statements
    for statement in statements:
        clickhouse.query(f"EXPLAIN AST {statement}")
        if statement.startswith("INSERT INTO "):
            assert "_local" not in statement, statement
            assert "distributed_foreground_insert = 1" in statement, statement
            continue
        assert " ON CLUSTER `ollystack`" in statement.split("\n", 1)[0], statement[:200]
        assert not re.search(r"ENGINE = (Aggregating|Summing|Replacing)?MergeTree\b", statement), statement[
            :300
        ]


def test_cluster_needs_a_server(settings: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    settings.OLLYSTACK_CLICKHOUSE_CLUSTER = "ollystack"
    settings.OLLYSTACK_CLICKHOUSE_URL = ""
    with pytest.raises(ImproperlyConfigured, match="OLLYSTACK_CLICKHOUSE_CLUSTER needs a ClickHouse server"):
        SchemaOptions.from_settings()
    settings.OLLYSTACK_CLICKHOUSE_URL = "clickhouse://ch-1a.internal:9000/default"
    assert SchemaOptions.from_settings().cluster == "ollystack"
    settings.OLLYSTACK_CLICKHOUSE_CLUSTER = "ollystack'; DROP"
    with pytest.raises(ImproperlyConfigured, match="is not a ClickHouse cluster or storage policy name"):
        SchemaOptions.from_settings()


def test_tiers_need_a_server_and_increasing_ages(settings: Any) -> None:
    from django.core.exceptions import ImproperlyConfigured

    settings.OLLYSTACK_CLICKHOUSE_STORAGE_POLICY = "tiered"
    with pytest.raises(ImproperlyConfigured, match="STORAGE_POLICY needs a ClickHouse server"):
        SchemaOptions.from_settings()
    settings.OLLYSTACK_CLICKHOUSE_URL = "clickhouse://ch.internal:9000/default"
    settings.OLLYSTACK_CLICKHOUSE_WARM_AFTER_DAYS = 7
    settings.OLLYSTACK_CLICKHOUSE_COLD_AFTER_DAYS = 7
    with pytest.raises(ImproperlyConfigured, match="COLD_AFTER_DAYS=7 must be greater than"):
        SchemaOptions.from_settings()
    settings.OLLYSTACK_CLICKHOUSE_COLD_AFTER_DAYS = 0  # no cold tier
    assert SchemaOptions.from_settings() == SchemaOptions("", "tiered", 7, 0)
