"""A tenant's own ClickHouse SQL, run read-only, limited, and restricted by the engine to the tenant's rows.

Nothing here inspects the query text. ClickHouse parses it (``parseQueryToJSON`` and ``formatQuery``, the
text bound as a parameter), and the checks walk that syntax tree: one SELECT (``WITH``/``UNION``/
``INTERSECT`` included), tables only from :data:`ALLOWED_TABLES` (CTE names resolved by scope), no table
functions except :data:`ALLOWED_TABLE_FUNCTIONS`, no functions that read outside the query
(:data:`DENIED_FUNCTIONS`: files, dictionaries, joins, server settings), no ``SETTINGS``, ``FORMAT`` or
``INTO OUTFILE``. What runs is ClickHouse's own rendering of that tree, never the submitted text.

The engine then enforces what matters on every read, whatever the tree check missed:
``additional_table_filters`` gives every allowed table the filter ``tenant_id = '<tenant>'`` and every other
table of the database the filter ``0``; ``readonly = 1`` refuses writes, DDL, setting changes and the table
functions that reach files, URLs and other servers; time, memory, rows-read and result-size limits stop
heavy queries. All of them are query-level settings, so nothing outlives the query (the embedded engine's
sessions are shared by every request).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ollystack.clickhouse.backends import Backend, QueryError

# Tables a tenant may read: the signals and the materialized views' target tables. The ingest bookkeeping
# and the topology lookup tables are internal.
ALLOWED_TABLES: tuple[str, ...] = (
    "spans",
    "logs",
    "metric_points",
    "service_metrics_1m",
    "service_metrics_5m",
    "service_metrics_1h",
    "slowest_requests_1m",
    "error_aggregates",
    "service_topology",
    "log_volume_1m",
    "metric_series_1m",
    "metric_anomalies",
)

# Table functions that generate rows and read nothing.
ALLOWED_TABLE_FUNCTIONS = frozenset({"numbers", "generate_series"})

# Functions that read outside the query (files, dictionaries, Join tables, server configuration, other
# tables' metadata, models, the machine) or call out (AI functions). Compared in lower case.
DENIED_FUNCTIONS = frozenset(
    {
        "file",
        "joinget",
        "joingetornull",
        "hascolumnintable",
        "getserversetting",
        "getmergetreesetting",
        "getmacro",
        "getclienthttpheader",
        "getserverport",
        "getmaxtablenamelengthfordatabase",
        "filesystemavailable",
        "filesystemcapacity",
        "filesystemunreserved",
        "showcertificate",
        "catboostevaluate",
        "evalmlmethod",
        "addresstoline",
        "addresstolinewithinlines",
        "addresstosymbol",
        "demangle",
        "logtrace",
        "ismergetreepartcoveredby",
        "mergetreepartinfo",
        "tid",
    }
)
DENIED_FUNCTION_PREFIXES = ("dict", "ai")

_TENANT_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ERROR_CODE = re.compile(r"Code:\s*(\d+)")
_SAFE_INTEGER = 2**53 - 1


@dataclass(frozen=True)
class Limits:
    """What one query may cost. Defaults suit an interactive query on a small machine."""

    max_execution_time: float = 10.0
    max_memory_usage: int = 1 << 30
    max_rows_to_read: int = 1_000_000_000
    max_result_rows: int = 10_000
    max_result_bytes: int = 16 << 20


@dataclass(frozen=True)
class Column:
    name: str
    type: str


@dataclass(frozen=True)
class SqlResult:
    columns: list[Column]
    rows: list[list[Any]]
    rows_read: int
    elapsed_ms: float
    truncated: bool


class SqlError(Exception):
    """A query that cannot be answered; ``kind`` says why (the API maps it to a status)."""

    kind = "invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SqlRefused(SqlError):
    """The query asks for something users' SQL may not do."""

    kind = "refused"


class SqlTimeout(SqlError):
    kind = "timeout"


class SqlMemoryExceeded(SqlError):
    kind = "memory"


class SqlTooMuchRead(SqlError):
    kind = "read_limit"


class SqlResultTooLarge(SqlError):
    kind = "result_too_large"


def run_user_sql(backend: Backend, tenant_id: str, query: str, limits: Limits | None = None) -> SqlResult:
    """Run a tenant's SELECT and return at most ``limits.max_result_rows`` rows (``truncated`` says whether
    more matched), values as JSON-safe as the engine's JSON output."""
    limits = limits or Limits()
    started = time.monotonic()
    canonical, tree, database, tables = _parse(backend, query)
    check_tree(tree, database, tables)
    settings = engine_settings(tenant_id, database, tables, limits)
    columns = _describe(backend, canonical, settings, limits)
    result = _run(backend, select_rows_sql(canonical, columns, limits.max_result_rows), settings, limits)
    rows = [_json_safe(json.loads(text)) for (text,) in result.rows]
    truncated = len(rows) > limits.max_result_rows
    elapsed = result.elapsed_s if result.elapsed_s is not None else time.monotonic() - started
    return SqlResult(
        columns=columns,
        rows=rows[: limits.max_result_rows],
        rows_read=result.rows_read or 0,
        elapsed_ms=round(elapsed * 1000, 3),
        truncated=truncated,
    )


def _parse(backend: Backend, query: str) -> tuple[str, dict[str, Any], str, list[str]]:
    """The engine's canonical text of the query and its syntax tree, plus the database's tables."""
    if not query.strip():
        raise SqlRefused("the query is empty; send one SELECT statement")
    try:
        result = backend.query(
            "SELECT formatQuery({q:String}) AS text, parseQueryToJSON(text), currentDatabase(),"
            " (SELECT groupArray(name) FROM system.tables WHERE database = currentDatabase())",
            {"q": query},
        )
    except QueryError as exc:
        message = _engine_message(str(exc))
        if "does not support JSON serialization" in message:
            raise SqlRefused(
                f"only one SELECT statement is allowed, made of constructs the engine can check ({message})"
            ) from None
        raise SqlError(message) from None
    text, tree, database, tables = result.rows[0]
    return str(text), json.loads(tree), str(database), [str(t) for t in tables]


def check_tree(tree: Mapping[str, Any], database: str, tables: Iterable[str] = ()) -> None:
    """Refuse what users' SQL may not do, judged on the engine's syntax tree of the query. ``tables``: the
    database's tables (an identifier on the right of ``IN`` may name one)."""
    if tree.get("type") != "SelectWithUnionQuery":
        kind = str(tree.get("type", "unknown")).removesuffix("Query").upper() or "UNKNOWN"
        raise SqlRefused(f"only one SELECT statement is allowed (got {kind})")
    _walk(tree, _Scope(database, frozenset(tables), frozenset()))


@dataclass(frozen=True)
class _Scope:
    database: str
    tables: frozenset[str]
    ctes: frozenset[str]


_IN_FUNCTIONS = frozenset(
    {"in", "notin", "globalin", "globalnotin", "nullin", "notnullin", "globalnullin", "globalnotnullin"}
)


def _walk(node: Any, scope: _Scope) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, scope)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("type")
    if kind == "SelectWithUnionQuery":
        if "out_file" in node or node.get("is_into_outfile_with_stdout"):
            raise SqlRefused("INTO OUTFILE is not allowed; the API returns the rows")
        if "format_ast" in node:
            raise SqlRefused("FORMAT is not allowed; the API chooses the output format")
        if "settings_ast" in node:
            raise SqlRefused("a SETTINGS clause is not allowed; the API sets the query's limits")
    if kind == "SetQuery" or (kind == "SelectQuery" and "settings" in node):
        raise SqlRefused("a SETTINGS clause is not allowed; the API sets the query's limits")
    if kind == "SelectQuery":
        _walk_select(node, scope)
        return
    if kind == "TableExpression":
        _check_table_expression(node, scope)
    if kind == "Function":
        _check_function(node, scope)
    if kind not in _KNOWN_TYPES:
        raise SqlRefused(f"{kind} is not supported in users' SQL")
    for key, value in node.items():
        if key != "type":
            _walk(value, scope)


def _walk_select(node: Mapping[str, Any], scope: _Scope) -> None:
    """A SELECT's CTE names are visible after their definition, in the rest of that SELECT and its
    subqueries; a CTE's own body does not see its name (there it names the table of that name)."""
    for element in _children(node.get("with")):
        if element.get("type") == "WithElement":
            _walk(element.get("subquery"), scope)
            scope = _Scope(scope.database, scope.tables, scope.ctes | {str(element.get("name", ""))})
        else:  # WITH <expression> AS alias: a scalar, not a table
            _walk(element, scope)
    for key, value in node.items():
        if key not in ("type", "with"):
            _walk(value, scope)


def _children(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        for child in node.get("children", []):
            if isinstance(child, dict):
                yield child


def _check_table_expression(node: Mapping[str, Any], scope: _Scope) -> None:
    function = node.get("table_function")
    if isinstance(function, dict):
        name = str(function.get("name", ""))
        if name.lower() not in ALLOWED_TABLE_FUNCTIONS:
            raise SqlRefused(
                f"table functions are not allowed ({name}); read the tables {', '.join(ALLOWED_TABLES)}"
                f" (row generators allowed: {', '.join(sorted(ALLOWED_TABLE_FUNCTIONS))})"
            )
    table = node.get("database_and_table_name")
    if isinstance(table, dict):
        _check_table(_name_parts(table), scope)


def _name_parts(identifier: Mapping[str, Any]) -> list[str]:
    return [str(p) for p in identifier.get("name_parts") or [identifier.get("name", "")]]


def _check_table(parts: list[str], scope: _Scope) -> None:
    if len(parts) == 1 and parts[0] in scope.ctes:
        return
    in_database = len(parts) == 1 or (len(parts) == 2 and parts[0] == scope.database)
    if not in_database or parts[-1] not in ALLOWED_TABLES:
        raise SqlRefused(
            f"table {'.'.join(parts)} is not allowed; allowed tables are {', '.join(ALLOWED_TABLES)}"
        )


def _check_function(node: Mapping[str, Any], scope: _Scope) -> None:
    name = str(node.get("name", ""))
    lower = name.lower()
    if lower in DENIED_FUNCTIONS or lower.startswith(DENIED_FUNCTION_PREFIXES):
        raise SqlRefused(f"function {name} is not allowed in users' SQL (it reads outside the query)")
    if lower in _IN_FUNCTIONS:
        # `x IN name` reads the table `name` when one exists; a column or alias of that name is fine
        arguments = list(_children(node.get("arguments")))
        if len(arguments) == 2 and arguments[1].get("type") == "Identifier":
            parts = _name_parts(arguments[1])
            names_table = (len(parts) == 1 and parts[0] in scope.tables) or (
                len(parts) == 2
                and parts[0] in {scope.database, "system", "information_schema", "INFORMATION_SCHEMA"}
            )
            if names_table:
                _check_table(parts, scope)


# Syntax tree nodes the checks understand; anything else (a construct added by a later engine version)
# is refused rather than let through unchecked.
_KNOWN_TYPES = frozenset(
    {
        None,
        "SelectWithUnionQuery",
        "SelectIntersectExceptQuery",
        "SelectQuery",
        "ExpressionList",
        "Expression",
        "Literal",
        "Identifier",
        "TableIdentifier",
        "Function",
        "Asterisk",
        "QualifiedAsterisk",
        "ColumnsRegexpMatcher",
        "ColumnsListMatcher",
        "QualifiedColumnsRegexpMatcher",
        "QualifiedColumnsListMatcher",
        "ColumnsApplyTransformer",
        "ColumnsExceptTransformer",
        "ColumnsReplaceTransformer",
        "ColumnsReplaceTransformerReplacement",
        "ColumnsTransformerList",
        "Subquery",
        "TablesInSelectQuery",
        "TablesInSelectQueryElement",
        "TableExpression",
        "TableJoin",
        "ArrayJoin",
        "OrderByElement",
        "WithElement",
        "WindowDefinition",
        "WindowListElement",
        "InterpolateElement",
        "Interpolate",
        "SampleRatio",
        "DataType",
        "NameTypePair",
        "ColumnDeclaration",
        "QueryParameter",
        "Alias",
        "FunctionWithKeyValueArguments",
        "Pair",
        "LimitByElement",
        "StorageOrderByElement",
        "TTLElement",
    }
)


def engine_settings(tenant_id: str, database: str, tables: list[str], limits: Limits) -> dict[str, Any]:
    """The query-level settings that hold a tenant's query in: its rows only, read-only, limited."""
    if not _TENANT_ID.fullmatch(tenant_id):
        raise ValueError(f"tenant id {tenant_id!r} is not a lower-case UUID")
    filters = {f"{database}.{name}": "0" for name in tables if name not in ALLOWED_TABLES}
    filters.update({f"{database}.{name}": f"tenant_id = '{tenant_id}'" for name in ALLOWED_TABLES})
    return {
        "readonly": 1,
        "additional_table_filters": _map_literal(filters),
        "max_execution_time": limits.max_execution_time,
        "timeout_overflow_mode": "throw",
        "max_memory_usage": limits.max_memory_usage,
        "max_rows_to_read": limits.max_rows_to_read,
        "read_overflow_mode": "throw",
        "max_result_bytes": limits.max_result_bytes,
        "result_overflow_mode": "throw",
        "allow_introspection_functions": 0,
        "output_format_json_quote_64bit_integers": 0,
        "output_format_json_quote_denormals": 0,
        "output_format_json_validate_utf8": 1,
    }


def _map_literal(entries: Mapping[str, str]) -> str:
    """A ``Map(String, String)`` literal; keys and values are table names and filters we build, quoted."""

    def quote(text: str) -> str:
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return "{" + ", ".join(f"{quote(k)}: {quote(v)}" for k, v in entries.items()) + "}"


def _describe(backend: Backend, canonical: str, settings: Mapping[str, Any], limits: Limits) -> list[Column]:
    """The result's columns, from the engine's analysis of the query under the same restrictions."""
    result = _guarded(lambda: backend.query(f"DESCRIBE (\n{canonical}\n)", settings=settings), limits)
    return [Column(str(row[0]), str(row[1])) for row in result.rows]


def select_rows_sql(canonical: str, columns: list[Column], max_rows: int) -> str:
    """Each result row as one JSON array written by the engine. Columns are taken by position (no names
    are written into SQL); binary ``FixedString`` ids become hex, aggregate states their final value.
    ``materialize``: a constant result is counted by the byte limit too (the engine counts constants once)."""
    values = ", ".join(_column_expression(i + 1, column.type) for i, column in enumerate(columns))
    return (
        f"SELECT materialize(formatRowNoNewline('JSONCompactEachRow', {values})) FROM "
        f"(SELECT tuple(*) AS row FROM (\n{canonical}\n)) LIMIT {max_rows + 1}"
    )


def _column_expression(position: int, type_name: str) -> str:
    value = f"tupleElement(row, {position})"
    bare = re.sub(r"^(?:(?:LowCardinality|Nullable)\()+", "", type_name)
    if bare.startswith("FixedString("):
        return f"hex({value})"
    if bare.startswith("AggregateFunction("):
        return f"finalizeAggregation({value})"
    return value


def _run(backend: Backend, sql: str, settings: Mapping[str, Any], limits: Limits) -> Any:
    return _guarded(lambda: backend.query_with_stats(sql, settings=settings), limits)


def _guarded(run: Any, limits: Limits | None = None) -> Any:
    try:
        return run()
    except QueryError as exc:
        raise _classify(str(exc), limits or Limits()) from None


def _classify(message: str, limits: Limits) -> SqlError:
    match = _ERROR_CODE.search(message)
    code = int(match.group(1)) if match else 0
    text = _engine_message(message)
    if code in (159, 160):  # TIMEOUT_EXCEEDED, TOO_SLOW
        return SqlTimeout(
            f"the query ran longer than {limits.max_execution_time:g} s; narrow the time range or aggregate "
            f"in a materialized view table ({text})"
        )
    if code == 241:  # MEMORY_LIMIT_EXCEEDED
        return SqlMemoryExceeded(
            f"the query needs more than {limits.max_memory_usage >> 20} MiB of memory; "
            f"group by fewer keys or narrow the time range ({text})"
        )
    if code in (158, 307):  # TOO_MANY_ROWS, TOO_MANY_BYTES (read limits)
        return SqlTooMuchRead(
            f"the query reads more than {limits.max_rows_to_read:,} rows; filter on timestamp or minute "
            f"({text})"
        )
    if code == 396:  # TOO_MANY_ROWS_OR_BYTES (result)
        return SqlResultTooLarge(
            f"the result is larger than {limits.max_result_bytes >> 20} MiB; select fewer columns or add a "
            f"LIMIT ({text})"
        )
    if code == 164:  # READONLY
        return SqlRefused(f"users' SQL is read-only ({text})")
    return SqlError(text)


def _engine_message(message: str) -> str:
    """ClickHouse's message without the code prefix, our wrapping query and the version suffix."""
    text = re.sub(r"^.*?DB::Exception:\s*", "", message.strip(), flags=re.S)
    text = re.sub(r"\s*\(version [^)]*\)\.?$", "", text)
    return re.split(r":? In scope ", text, maxsplit=1)[0].strip()


def _json_safe(value: Any) -> Any:
    """Integers beyond JavaScript's exact range become strings; the rest is already what JSON carries."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -_SAFE_INTEGER <= value <= _SAFE_INTEGER else str(value)
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    return value


def server_mode_ddl(database: str, tenant_id: str, limits: Limits | None = None) -> list[str]:
    """DDL for a ClickHouse server that restricts a tenant's SQL by grants and a row policy, independent of
    the per-query settings: a user per tenant (``ollystack_sql_<tenant hex>``) with SELECT on the allowed
    tables only, a settings profile whose limits it may lower but not raise, and a row policy per table
    keeping its tenant's rows. The password is left as ``<password>`` for the operator to fill in."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
        raise ValueError(f"{database!r} is not a plain ClickHouse database name")
    if not _TENANT_ID.fullmatch(tenant_id):
        raise ValueError(f"tenant id {tenant_id!r} is not a lower-case UUID")
    limits = limits or Limits()
    user = f"ollystack_sql_{tenant_id.replace('-', '')}"
    profile = "ollystack_sql"
    return [
        f"CREATE SETTINGS PROFILE IF NOT EXISTS {profile} SETTINGS readonly = 2 CONST,"
        f" allow_ddl = 0 CONST, allow_introspection_functions = 0 CONST,"
        f" max_execution_time = {limits.max_execution_time:g} MAX {limits.max_execution_time:g},"
        f" max_memory_usage = {limits.max_memory_usage} MAX {limits.max_memory_usage},"
        f" max_rows_to_read = {limits.max_rows_to_read} MAX {limits.max_rows_to_read},"
        f" max_result_bytes = {limits.max_result_bytes} MAX {limits.max_result_bytes}",
        f"CREATE USER IF NOT EXISTS {user} IDENTIFIED WITH sha256_password BY '<password>'"
        f" SETTINGS PROFILE {profile}",
        *(f"GRANT SELECT ON {database}.{table} TO {user}" for table in ALLOWED_TABLES),
        *(
            f"CREATE ROW POLICY IF NOT EXISTS {user} ON {database}.{table}"
            f" USING tenant_id = '{tenant_id}' AS permissive TO {user}"
            for table in ALLOWED_TABLES
        ),
    ]
