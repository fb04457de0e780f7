"""What every OTLP receiver does with a request, independent of the transport.

authenticate (ingest key → tenant) → decompress → decode and count → quota (``ingest.quotas``) → WAL
(``Pipeline.submit``). The gRPC and HTTP receivers only translate their input to these calls and the
exceptions to status codes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ingest import metrics
from ingest.auth import KeyCache
from ingest.otlp import JSON, PROTOBUF, DecodedRequest, decode, decompress
from ingest.pipeline import Pipeline, Retryable
from ingest.quotas import QuotaStore, get_store
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
    def __init__(
        self,
        keys: KeyCache,
        pipeline: Pipeline,
        max_request_bytes: int,
        quotas: QuotaStore | None = None,
    ) -> None:
        self.keys = keys
        self.pipeline = pipeline
        self.max_request_bytes = max_request_bytes
        self.quotas = quotas if quotas is not None else get_store()

    async def stop(self) -> None:
        """Persist quota usage (local store) or close the quota store's connections (Redis)."""
        await self.quotas.close()

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
        ``UnsupportedEncoding`` or ``Retryable`` (``Backpressure``, ``Throttled``, ``QuotaExceeded``).

        The quota is checked once the request's records and uncompressed bytes are known and before the
        WAL; a request the WAL then refuses is given back to the quota, so a refusal never counts."""
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
            grant = await self.quotas.check(principal, decoded.records, len(decoded.payload))
            try:
                await self.pipeline.submit(signal, principal, decoded.payload, decoded.records)
            except Retryable:
                await self.quotas.release(grant)
                raise
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
