"""POST /api/v1/sql: a tenant's read-only ClickHouse SQL (see docs/sql.md; the rules live in
ollystack.clickhouse.user_sql)."""

from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from ollystack.clickhouse import get_backend, user_sql
from ollystack.telemetry.api.access import ERRORS, ReadView, parse, tenant_id_for
from ollystack.telemetry.api.params import ErrorBody, TenantParam

MAX_QUERY_LENGTH = 100_000
LIMITS = user_sql.Limits()

# what each kind of failure answers; documented in docs/sql.md
STATUS = {
    "invalid": 400,
    "refused": 400,
    "timeout": 408,
    "result_too_large": 413,
    "memory": 422,
    "read_limit": 422,
}


class SqlRequest(serializers.Serializer):
    query = serializers.CharField(max_length=MAX_QUERY_LENGTH, trim_whitespace=False)
    format = serializers.ChoiceField(choices=["json"], default="json", required=False)


class SqlView(ReadView):
    @extend_schema(
        summary="Run a read-only SELECT over the tenant's own telemetry",
        description="Tables, limits and errors: docs/sql.md.",
        parameters=[TenantParam],
        request=SqlRequest,
        responses={
            200: OpenApiTypes.OBJECT,
            408: OpenApiResponse(ErrorBody, description="The query ran longer than its time limit."),
            413: OpenApiResponse(ErrorBody, description="The result is larger than the byte limit."),
            422: OpenApiResponse(ErrorBody, description="The query needs too much memory or reads too much."),
            **ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        parse(TenantParam, request)
        tenant_id = tenant_id_for(request)
        body = request.data if isinstance(request.data, dict) else None
        if body is None:
            raise exceptions.ValidationError('send a JSON object: {"query": "SELECT ..."}')
        unknown = sorted(set(body) - {"query", "format"})
        if unknown:
            raise exceptions.ValidationError({unknown[0]: "unknown field; send query and optionally format"})
        request_body = SqlRequest(data=body)
        request_body.is_valid(raise_exception=True)
        try:
            result = user_sql.run_user_sql(
                get_backend(), tenant_id, request_body.validated_data["query"], LIMITS
            )
        except user_sql.SqlError as exc:
            return Response({"error": exc.message, "kind": exc.kind}, status=STATUS.get(exc.kind, 400))
        return Response(
            {
                "columns": [asdict(column) for column in result.columns],
                "rows": result.rows,
                "rows_read": result.rows_read,
                "elapsed_ms": result.elapsed_ms,
                "truncated": result.truncated,
            }
        )
