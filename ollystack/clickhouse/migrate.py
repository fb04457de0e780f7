"""Apply the numbered migrations in ``ollystack/clickhouse/migrations`` that are not recorded yet."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import Callable
from types import ModuleType

from ollystack.clickhouse import migrations
from ollystack.clickhouse.backends import Backend
from ollystack.clickhouse.tables import SchemaOptions, local_name, render, render_alter, ttl_rules
from ollystack.clickhouse.tables.logs import logs_def
from ollystack.clickhouse.tables.metric_points import metric_points_def
from ollystack.clickhouse.tables.migrations_table import ch_migrations_def
from ollystack.clickhouse.tables.spans import spans_def

_TTL = re.compile(r" TTL (.*?)(?: SETTINGS |$)")


def migration_names() -> list[str]:
    return sorted(
        m.name for m in pkgutil.iter_modules(migrations.__path__) if m.name[:4].isdigit() and not m.ispkg
    )


def load_migration(name: str) -> ModuleType:
    return importlib.import_module(f"{migrations.__name__}.{name}")


def migration_statements(
    module: ModuleType, options: SchemaOptions, backend: Backend | None = None
) -> list[str]:
    """A migration's statements rendered for ``options`` (and, for a migration whose ``operations`` takes
    it, for what ``backend`` already holds; without one, every statement it may need)."""
    operations = getattr(module, "operations", None)
    if operations is not None:
        if len(inspect.signature(operations).parameters) > 1:
            return list(operations(options, backend))
        return list(operations(options))
    if options.cluster:
        raise RuntimeError(
            f"ClickHouse migration {module.__name__} is a plain statement list and cannot run ON CLUSTER; "
            "give it an operations(options) function"
        )
    return list(module.OPERATIONS)


def default_options() -> SchemaOptions:
    from django.conf import settings

    return SchemaOptions.from_settings() if settings.configured else SchemaOptions()


def apply_migrations(
    backend: Backend, log: Callable[[str], object] = print, options: SchemaOptions | None = None
) -> list[str]:
    """Apply pending migrations in order; returns the names applied (empty when up to date)."""
    options = options or default_options()
    for statement in render(ch_migrations_def(), options):
        backend.command(statement)
    done = {row[0] for row in backend.query("SELECT name FROM ch_migrations").rows}
    # in a cluster the bookkeeping row goes through a Distributed table: written before the INSERT returns
    record_settings = {"distributed_foreground_insert": 1} if options.cluster else None
    applied = []
    for name in migration_names():
        if name in done:
            continue
        module = load_migration(name)
        if getattr(module, "REWRITES_DATA", False):
            log(
                f"ClickHouse migration {name} rewrites stored data: it runs in the background after this "
                "command and takes time and free disk in proportion to the data"
            )
        for statement in migration_statements(module, options, backend):
            backend.command(statement)
        backend.command(
            "INSERT INTO ch_migrations (name) VALUES ({name:String})", {"name": name}, record_settings
        )
        log(f"applied ClickHouse migration {name}")
        applied.append(name)
    layout = storage_statements(backend, options)
    if layout:
        log(
            "ClickHouse storage policy or TTL changed in the settings: updating the tables (rows are "
            "re-examined against the new TTL in the background)"
        )
        for statement in layout:
            backend.command(statement)
    return applied


def storage_statements(backend: Backend, options: SchemaOptions) -> list[str]:
    """The ALTERs that give the signal tables the storage policy and TTL of ``options`` (none when they
    have them), so that configuring tiers or changing their ages after install takes effect at the next
    ``migrate_clickhouse``."""
    statements = []
    for table in (spans_def(), logs_def(), metric_points_def()):
        found = backend.query(
            "SELECT storage_policy, engine_full FROM system.tables "
            "WHERE database = currentDatabase() AND name = {name:String}",
            {"name": local_name(table.name, options)},
        ).rows
        if not found:
            continue
        policy, engine_full = found[0]
        if options.storage_policy and policy != options.storage_policy:
            setting = f"MODIFY SETTING storage_policy = '{options.storage_policy}'"
            statements += render_alter(table.name, [setting], options)
        rules = ttl_rules(table, options)
        ttl = _TTL.search(engine_full)
        if (ttl.group(1) if ttl else "") != ", ".join(rule.removesuffix(" DELETE") for rule in rules):
            statements += render_alter(table.name, ["MODIFY TTL " + ", ".join(rules)], options)
    return statements
