"""Apply the numbered migrations in ``ollystack/clickhouse/migrations`` that are not recorded yet."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from ollystack.clickhouse import migrations
from ollystack.clickhouse.backends import Backend
from ollystack.clickhouse.tables.migrations_table import ch_migrations_table


def migration_names() -> list[str]:
    return sorted(
        m.name for m in pkgutil.iter_modules(migrations.__path__) if m.name[:4].isdigit() and not m.ispkg
    )


def apply_migrations(backend: Backend, log: Callable[[str], object] = print) -> list[str]:
    """Apply pending migrations in order; returns the names applied (empty when up to date)."""
    backend.command(ch_migrations_table())
    done = {row[0] for row in backend.query("SELECT name FROM ch_migrations").rows}
    applied = []
    for name in migration_names():
        if name in done:
            continue
        module = importlib.import_module(f"{migrations.__name__}.{name}")
        for statement in module.OPERATIONS:
            backend.command(statement)
        backend.command("INSERT INTO ch_migrations (name) VALUES ({name:String})", {"name": name})
        log(f"applied ClickHouse migration {name}")
        applied.append(name)
    return applied
