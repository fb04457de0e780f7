"""What every OTLP receiver does with a request, independent of the transport.

authenticate (ingest key → tenant) → decompress → decode and count → WAL (``Pipeline.submit``). The
gRPC and HTTP receivers only translate their input to these calls and the exceptions to status codes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ingest import metrics
from ingest.auth import KeyCache
from ingest.otlp import JSON, PROTOBUF, DecodedRequest, decode, decompress
from ingest.pipeline import Pipeline, Retryable
from ollystack.clickhouse import Signal
from tenants.logic import IngestPrincipal

# Above this many bytes a request is decoded in a worker thread so the event loop keeps serving others.
INLINE_DECODE_BYTES = 1 << 20


@dataclass(frozen=True)
class ExportResult:
    records: int
    rejected: int = 0
    message: str = ""


class IngestService:
    def __init__(self, keys: KeyCache, pipeline: Pipeline, max_request_bytes: int) -> None:
        self.keys = keys
        self.pipeline = pipeline
        self.max_request_bytes = max_request_bytes

    def authenticate(self, authorization: str | None) -> IngestPrincipal:
        return self.keys.authenticate(authorization)

    async def export(
        self,
        signal: Signal,
        principal: IngestPrincipal,
        body: bytes,
        content_type: str = PROTOBUF,
        content_encoding: str | None = None,
    ) -> ExportResult:
        """Accept one export request; raises ``InvalidPayload``, ``RequestTooLarge``,
        ``UnsupportedEncoding`` or ``Retryable`` (``Backpressure``/``Throttled``)."""
        if content_type == JSON or len(body) > INLINE_DECODE_BYTES:
            decoded = await asyncio.to_thread(self._decode, signal, body, content_type, content_encoding)
        else:
            decoded = self._decode(signal, body, content_type, content_encoding)
        tenant = principal.tenant_name
        metrics.RECORDS_RECEIVED.labels(tenant, signal.value).inc(decoded.records + decoded.rejected)
        if decoded.rejected:
            metrics.RECORDS_REJECTED.labels(tenant, signal.value, "invalid").inc(decoded.rejected)
        if decoded.records == 0:
            return ExportResult(0, decoded.rejected, decoded.message)
        try:
            await self.pipeline.submit(signal, principal, decoded.payload, decoded.records)
        except Retryable as exc:
            metrics.RECORDS_REJECTED.labels(tenant, signal.value, exc.reason).inc(decoded.records)
            raise
        metrics.RECORDS_ACCEPTED.labels(tenant, signal.value).inc(decoded.records)
        return ExportResult(decoded.records, decoded.rejected, decoded.message)

    def _decode(
        self, signal: Signal, body: bytes, content_type: str, content_encoding: str | None
    ) -> DecodedRequest:
        raw = decompress(body, content_encoding, self.max_request_bytes)
        return decode(signal, raw, content_type)
