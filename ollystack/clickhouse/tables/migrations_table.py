"""Bookkeeping of applied ClickHouse migrations."""

from ollystack.clickhouse.tables import TableDef, render


def ch_migrations_def(name: str = "ch_migrations") -> TableDef:
    return TableDef(
        name=name,
        columns="""
    name String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
""",
        order_by="name",
    )


def ch_migrations_table(name: str = "ch_migrations") -> str:
    return render(ch_migrations_def(name))[0]
