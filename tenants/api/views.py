"""The caller's tenant: its quotas, its sampling and what it used today."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ingest import quotas
from ollystack.telemetry.api.access import ERRORS, HasScope, parse, tenant_id_for
from ollystack.telemetry.api.params import TenantParam


class QuotaSerializer(serializers.Serializer):
    rate_limit_records_per_second = serializers.IntegerField(
        allow_null=True, help_text="Sustained records per second; null: no rate limit."
    )
    rate_limit_burst = serializers.IntegerField(
        allow_null=True, help_text="Records accepted at once after a quiet period; null without a rate limit."
    )
    daily_records_cap = serializers.IntegerField(
        allow_null=True, help_text="Records per UTC day; null: unlimited."
    )
    daily_bytes_cap = serializers.IntegerField(
        allow_null=True, help_text="Uncompressed OTLP bytes per UTC day; null: unlimited."
    )


class SamplingSerializer(serializers.Serializer):
    trace_sample_rate = serializers.FloatField(help_text="Fraction of traces kept (1: all).")
    trace_slow_threshold_ms = serializers.IntegerField(help_text="Spans at least this slow are always kept.")


class UsageSerializer(serializers.Serializer):
    day = serializers.DateField(help_text="The UTC day counted.")
    records = serializers.IntegerField(help_text="Records accepted today.")
    bytes = serializers.IntegerField(help_text="Uncompressed OTLP bytes accepted today.")
    records_remaining = serializers.IntegerField(
        allow_null=True, help_text="Records left under the daily cap; null without a cap."
    )
    bytes_remaining = serializers.IntegerField(
        allow_null=True, help_text="Bytes left under the daily cap; null without a cap."
    )
    resets_at = serializers.DateTimeField(help_text="Next 00:00 UTC, when the daily counters restart.")


class TenantUsageSerializer(serializers.Serializer):
    tenant = serializers.CharField(help_text="Tenant name.")
    tenant_id = serializers.CharField()
    quota = QuotaSerializer()
    sampling = SamplingSerializer()
    usage = UsageSerializer(allow_null=True, help_text="Null when the quota store cannot be read.")
    usage_error = serializers.CharField(help_text="Why usage is null; empty otherwise.")
    quota_store = serializers.CharField(help_text="local (one server) or redis (shared by replicas).")


def _remaining(used: int, cap: int | None) -> int | None:
    return None if cap is None else max(0, cap - used)


def _body(report: quotas.TenantUsage) -> dict[str, Any]:
    policy, usage = report.policy, report.usage
    return {
        "tenant": report.tenant.tenant_name,
        "tenant_id": report.tenant.tenant_id,
        "quota": {
            "rate_limit_records_per_second": policy.rate_limit_per_second,
            "rate_limit_burst": policy.effective_burst,
            "daily_records_cap": policy.daily_records_cap,
            "daily_bytes_cap": policy.daily_bytes_cap,
        },
        "sampling": {
            "trace_sample_rate": policy.trace_sample_rate,
            "trace_slow_threshold_ms": policy.trace_slow_threshold_ms,
        },
        "usage": None
        if usage is None
        else {
            "day": usage.day,
            "records": usage.records,
            "bytes": usage.bytes,
            "records_remaining": _remaining(usage.records, policy.daily_records_cap),
            "bytes_remaining": _remaining(usage.bytes, policy.daily_bytes_cap),
            "resets_at": usage.resets_at,
        },
        "usage_error": report.usage_error,
        "quota_store": report.store,
    }


class UsageView(APIView):
    permission_classes = [IsAuthenticated, HasScope]
    required_scope = "read"

    @extend_schema(
        summary="Quotas, sampling and today's usage of your tenant",
        description="Today is the current UTC day. Usage counts what the ingest servers accepted; refused "
        "requests are not counted.",
        parameters=[TenantParam],
        responses={200: TenantUsageSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        parse(TenantParam, request)
        report = quotas.tenant_usage(tenant_id_for(request))
        return Response(TenantUsageSerializer(_body(report)).data)
