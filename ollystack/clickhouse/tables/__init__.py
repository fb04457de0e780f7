"""DDL factories, one definition per table. Migrations render them; nothing else writes DDL.

A table is described once (:class:`TableDef`) and rendered for where it runs (:class:`SchemaOptions`): one
server or the embedded engine get ``CREATE TABLE name``; a cluster gets a ``Replicated*`` table
``name_local`` on every node (``ON CLUSTER``) and a ``Distributed`` table ``name`` over them, so queries
read ``name`` in both modes. With a storage policy, tables carry it and age-based ``TO VOLUME`` moves.
"""

from __future__ import annotations

from dataclasses import dataclass

# The volumes a tiered storage policy must have (deploy/clickhouse/storage.xml): new parts are written to
# the first one, TTL moves them on by age.
WARM_VOLUME = "warm"
COLD_VOLUME = "cold"


@dataclass(frozen=True)
class SchemaOptions:
    """Where the DDL runs. Built from settings when migrations run, never at import time."""

    cluster: str = ""
    storage_policy: str = ""
    warm_after_days: int = 0
    cold_after_days: int = 0

    @classmethod
    def from_settings(cls) -> SchemaOptions:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        options = cls(
            cluster=settings.OLLYSTACK_CLICKHOUSE_CLUSTER,
            storage_policy=settings.OLLYSTACK_CLICKHOUSE_STORAGE_POLICY,
            warm_after_days=settings.OLLYSTACK_CLICKHOUSE_WARM_AFTER_DAYS,
            cold_after_days=settings.OLLYSTACK_CLICKHOUSE_COLD_AFTER_DAYS,
        )
        if options.cluster and not settings.OLLYSTACK_CLICKHOUSE_URL:
            raise ImproperlyConfigured(
                "OLLYSTACK_CLICKHOUSE_CLUSTER needs a ClickHouse server (set OLLYSTACK_CLICKHOUSE_URL): "
                "the embedded engine is a single node"
            )
        if options.storage_policy and not settings.OLLYSTACK_CLICKHOUSE_URL:
            raise ImproperlyConfigured(
                "OLLYSTACK_CLICKHOUSE_STORAGE_POLICY needs a ClickHouse server with that policy in its "
                "configuration (set OLLYSTACK_CLICKHOUSE_URL): the embedded engine keeps its data under "
                "OLLYSTACK_VAR_DIR"
            )
        if 0 < options.cold_after_days <= options.warm_after_days:
            raise ImproperlyConfigured(
                f"OLLYSTACK_CLICKHOUSE_COLD_AFTER_DAYS={options.cold_after_days} must be greater than "
                f"OLLYSTACK_CLICKHOUSE_WARM_AFTER_DAYS={options.warm_after_days} (rows move warm, then cold)"
            )
        for name in (options.cluster, options.storage_policy):
            if name and not _is_identifier(name):
                raise ImproperlyConfigured(f"{name!r} is not a ClickHouse cluster or storage policy name")
        return options


@dataclass(frozen=True)
class TableDef:
    """One table, independent of where it runs.

    ``columns`` is the body of ``CREATE TABLE (...)`` (columns, then indexes); ``engine`` a MergeTree family
    name without ``Replicated`` and ``engine_args`` its parameters; ``ttl`` the delete rule(s);
    ``tiered_by`` the DateTime expression that ages rows onto the warm and cold volumes when a storage
    policy is configured (empty: the table stays where it is written).
    """

    name: str
    columns: str
    order_by: str
    engine: str = "MergeTree"
    engine_args: tuple[str, ...] = ()
    partition_by: str = ""
    primary_key: str = ""
    ttl: str = ""
    tiered_by: str = ""
    settings: tuple[tuple[str, str], ...] = ()
    sharding_key: str = "rand()"


def _is_identifier(name: str) -> bool:
    return name.replace("_", "").replace("-", "").replace(".", "").isalnum()


def _quote(name: str) -> str:
    if not _is_identifier(name):
        raise ValueError(f"invalid ClickHouse identifier {name!r}")
    return f"`{name}`"


def on_cluster(options: SchemaOptions | None = None) -> str:
    """`` ON CLUSTER `c` `` in cluster mode, else nothing."""
    return f" ON CLUSTER {_quote(options.cluster)}" if options and options.cluster else ""


def local_name(name: str, options: SchemaOptions | None = None) -> str:
    """The table that holds the rows on a node: ``name_local`` in cluster mode (where materialized views
    read and write), ``name`` otherwise."""
    return f"{name}_local" if options and options.cluster else name


def ttl_rules(table: TableDef, options: SchemaOptions | None = None) -> list[str]:
    """The TTL clause's elements: the table's delete rule, then the moves of a tiered storage policy."""
    rules = [table.ttl] if table.ttl else []
    if options and options.storage_policy and table.tiered_by:
        for days, volume in ((options.warm_after_days, WARM_VOLUME), (options.cold_after_days, COLD_VOLUME)):
            if days > 0:
                rules.append(f"{table.tiered_by} + toIntervalDay({days}) TO VOLUME '{volume}'")
    return rules


def table_settings(table: TableDef, options: SchemaOptions | None = None) -> list[tuple[str, str]]:
    settings = list(table.settings)
    if options and options.storage_policy:
        settings.append(("storage_policy", f"'{options.storage_policy}'"))
    return settings


def render(table: TableDef, options: SchemaOptions | None = None) -> list[str]:
    """The statements that create ``table`` (each ``IF NOT EXISTS``, so safe to re-run)."""
    cluster = options.cluster if options else ""
    local = local_name(table.name, options)
    args = list(table.engine_args)
    engine = table.engine
    if cluster:
        engine = f"Replicated{engine}"
        args = [f"'/clickhouse/tables/{{shard}}/{{database}}/{local}'", "'{replica}'", *args]
    clauses = [f"ENGINE = {engine}" + (f"({', '.join(args)})" if args else "")]
    if table.partition_by:
        clauses.append(f"PARTITION BY {table.partition_by}")
    if table.primary_key:
        clauses.append(f"PRIMARY KEY {table.primary_key}")
    clauses.append(f"ORDER BY {table.order_by}")
    rules = ttl_rules(table, options)
    if rules:
        clauses.append("TTL " + ",\n    ".join(rules))
    settings = table_settings(table, options)
    if settings:
        clauses.append("SETTINGS " + ", ".join(f"{k} = {v}" for k, v in settings))
    body = table.columns.strip("\n").rstrip().rstrip(",")
    statements = [
        f"CREATE TABLE IF NOT EXISTS {local}{on_cluster(options)} (\n{body}\n)\n" + "\n".join(clauses)
    ]
    if cluster:
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {table.name}{on_cluster(options)} AS {local}\n"
            f"ENGINE = Distributed({_quote(cluster)}, currentDatabase(), {local}, {table.sharding_key})"
        )
    return statements


def render_materialized_view(
    name: str, to_table: str, select: str, options: SchemaOptions | None = None
) -> str:
    """A materialized view writing into ``to_table`` (its local table in cluster mode). The SELECT must
    read its sources through :func:`local_name`: a view fires on the inserts into the table it reads."""
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name}{on_cluster(options)} "
        f"TO {local_name(to_table, options)} AS\n{select}"
    )


def render_drop(table: str, options: SchemaOptions | None = None) -> list[str]:
    """``DROP TABLE IF EXISTS`` of ``table`` (in a cluster its Distributed table, then its local one)."""
    names = [table, local_name(table, options)] if options and options.cluster else [table]
    return [f"DROP TABLE IF EXISTS {name}{on_cluster(options)} SYNC" for name in names]


def render_alter(
    table: str, clauses: list[str], options: SchemaOptions | None = None, distributed_too: bool = False
) -> list[str]:
    """``ALTER TABLE`` on the table that stores the rows; ``distributed_too`` repeats column changes on the
    Distributed table of a cluster (it has the same columns, no storage)."""
    body = ",\n    ".join(clauses)
    statements = [f"ALTER TABLE {local_name(table, options)}{on_cluster(options)}\n    {body}"]
    if distributed_too and options and options.cluster:
        statements.append(f"ALTER TABLE {table}{on_cluster(options)}\n    {body}")
    return statements
