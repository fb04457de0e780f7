"""``python manage.py clickhouse_query "SELECT …"``: one read-only query on the configured ClickHouse.

For operators and tests: it reads whatever the profile points at (the embedded engine's directory, or the
server named by ``OLLYSTACK_CLICKHOUSE_URL``). The engine enforces read-only (``readonly=1`` also forbids
table functions such as ``file()``); the statement must be a ``SELECT`` (or ``WITH … SELECT``) because
ClickHouse formats the rows itself with ``formatRow``, which works the same over both backends. The
embedded engine admits one process per directory, so stop ``serve``/``ingestd`` before reading theirs.
"""

from __future__ import annotations

import base64
import logging
import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

# Row formats: each row is formatted on its own, so formats with a header or a document around the rows
# (JSON, TSVWithNames, Pretty…) cannot be offered this way.
FORMATS = ("TSV", "TSVRaw", "CSV", "JSONEachRow", "JSONCompactEachRow", "JSONStringsEachRow", "TSKV")
_LEADING_COMMENTS = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.DOTALL)
_FIRST_WORD = re.compile(r"\(|[A-Za-z]+")


def first_keyword(sql: str) -> str:
    """The statement's first keyword (upper case) or ``(``, after comments; empty if there is none."""
    comments = _LEADING_COMMENTS.match(sql)
    word = _FIRST_WORD.match(sql, comments.end() if comments else 0)
    return word.group(0).upper() if word else ""


class Command(BaseCommand):
    help = "Run one read-only SELECT on the configured ClickHouse and print its rows."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("sql", help="one SELECT (or WITH … SELECT) statement")
        parser.add_argument(
            "--format", default="TSV", choices=FORMATS, help="ClickHouse row format (default TSV)"
        )
        parser.add_argument(
            "--param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="bind {NAME:Type} in the query to VALUE (repeatable); values are never pasted into SQL",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from ollystack.clickhouse import EngineLockedError, QueryError, get_backend

        sql = options["sql"].strip().rstrip(";").rstrip()
        keyword = first_keyword(sql)
        if keyword not in ("SELECT", "WITH", "("):
            raise CommandError(
                f"clickhouse_query runs one read-only SELECT (or WITH … SELECT); got {keyword or 'nothing'}. "
                "Tables and columns are in system.tables and system.columns; schema changes are made by "
                "migrate_clickhouse."
            )
        params = dict(self._parse_param(p) for p in options["param"])
        if "olly_format" in params:
            raise CommandError("--param olly_format is reserved by clickhouse_query; rename the parameter")
        params["olly_format"] = options["format"]
        # The driver logs each failed connection with a traceback; the error below already names the cause.
        logging.getLogger("clickhouse_driver").setLevel(logging.ERROR)
        try:
            backend = get_backend()
        except EngineLockedError as exc:
            raise CommandError(str(exc)) from None
        try:
            # base64: rows may hold any bytes (a FixedString id in TSV), and drivers decode String as UTF-8.
            result = backend.query(
                f"SELECT base64Encode(formatRow({{olly_format:String}}, *)) FROM (\n{sql}\n)",
                params,
                {"readonly": 1},
            )
        except QueryError as exc:
            raise CommandError(f"the query failed: {exc}") from None
        finally:
            backend.close()
        self._print(b"".join(base64.b64decode(row) for (row,) in result.rows))

    def _print(self, data: bytes) -> None:
        """Bytes as the engine formatted them; text streams without a byte buffer get them decoded."""
        buffer = getattr(self.stdout, "buffer", None)  # OutputWrapper passes attributes through
        if buffer is None:
            self.stdout.write(data.decode("utf-8", "replace"), ending="")
            return
        self.stdout.flush()
        buffer.write(data)
        buffer.flush()

    @staticmethod
    def _parse_param(text: str) -> tuple[str, str]:
        name, sep, value = text.partition("=")
        if not sep or not name.isidentifier():
            raise CommandError(f"--param {text!r} is not NAME=VALUE")
        return name, value
