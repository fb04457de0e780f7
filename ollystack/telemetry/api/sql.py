"""POST /api/v1/sql: a tenant's read-only ClickHouse SQL."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from ollystack.telemetry.api.access import ReadView


class SqlView(ReadView):
    def post(self, request: Request) -> Response:
        return Response({"error": "SQL queries are not available yet"}, status=501)
