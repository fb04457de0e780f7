"""Numbered schema migrations: ``NNNN_name.py`` modules, applied in order by ``migrate_clickhouse``.

A module defines ``operations(options: SchemaOptions) -> list[str]``: statements rendered for where they run
(one server, a cluster, a storage policy; see ``ollystack.clickhouse.tables``), each safe to re-run. One that
converts stored data takes the backend too, ``operations(options, backend)``, and renders only the steps
still to do (``backend`` is None when statements are rendered without a database: then all of them). A plain
``OPERATIONS`` list of statements is accepted too (one server only). ``REWRITES_DATA = True`` marks a
migration that rewrites stored parts (time and disk proportional to the data); it is announced first.
"""
