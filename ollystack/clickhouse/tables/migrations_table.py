"""Bookkeeping of applied ClickHouse migrations."""


def ch_migrations_table(name: str = "ch_migrations") -> str:
    return f"""
CREATE TABLE IF NOT EXISTS {name} (
    name String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY name
"""
