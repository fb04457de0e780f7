"""OTLP/HTTP receiver: a plain ASGI application (no Django on the hot path).

``POST /v1/traces``, ``/v1/logs``, ``/v1/metrics`` with ``application/x-protobuf`` or ``application/json``
bodies, optionally ``Content-Encoding: gzip``; the response uses the request's encoding. Errors carry a
``google.rpc.Status`` with a message (OTLP/HTTP specification); retryable ones (429, 503) a
``Retry-After`` header. The body is read chunk by chunk and reading stops as soon as it passes
``OLLYSTACK_MAX_REQUEST_BYTES`` (413), so an oversize request is never buffered whole.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import grpc
from google.protobuf import json_format
from google.rpc import status_pb2

from ingest import metrics
from ingest.auth import AuthError
from ingest.otlp import (
    JSON,
    PROTOBUF,
    SPECS,
    InvalidPayload,
    RequestTooLarge,
    UnsupportedEncoding,
    encode_response,
)
from ingest.pipeline import Backpressure, Retryable
from ingest.service import IngestService
from ollystack.clickhouse import Signal
from tenants.logic import IngestPrincipal

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_MEDIA_TYPES = {
    "application/x-protobuf": PROTOBUF,
    "application/protobuf": PROTOBUF,
    "application/json": JSON,
}
_PATHS = {spec.http_path: signal for signal, spec in SPECS.items()}
_GRPC_CODE = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    405: grpc.StatusCode.UNIMPLEMENTED,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


class _HttpError(Exception):
    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or []
        self.tenant = "-"  # set once the key is known, for the log line


def media_type(header: str | None) -> str | None:
    """``PROTOBUF``, ``JSON`` or None for a Content-Type header value (parameters ignored)."""
    if not header:
        return None
    return _MEDIA_TYPES.get(header.split(";", 1)[0].strip().lower())


def error_body(status: int, message: str, content_type: str) -> bytes:
    body = status_pb2.Status(code=_GRPC_CODE.get(status, grpc.StatusCode.UNKNOWN).value[0], message=message)
    if content_type == JSON:
        return json_format.MessageToJson(body, indent=None).encode()
    return bytes(body.SerializeToString())


class OtlpHttpApp:
    def __init__(self, service: IngestService, max_request_bytes: int) -> None:
        self.service = service
        self.max_request_bytes = max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        content_type = media_type(headers.get("content-type"))
        signal = _PATHS.get(scope["path"].rstrip("/") or "/")
        try:
            status, body = await self._handle(scope, receive, headers, signal, content_type)
            extra: list[tuple[bytes, bytes]] = []
        except _HttpError as exc:
            status, extra = exc.status, exc.headers
            body = error_body(status, str(exc), content_type or JSON)
            if status in (400, 413, 415, 429, 503):
                log.info(
                    "otlp request rejected protocol=http tenant=%s signal=%s status=%d error=%s",
                    exc.tenant,
                    signal.value if signal else "-",
                    status,
                    exc,
                )
        metrics.REQUESTS.labels("http", signal.value if signal else "-", str(status)).inc()
        response_headers = [
            (b"content-type", (content_type or JSON).encode()),
            (b"content-length", str(len(body)).encode()),
            *extra,
        ]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        headers: dict[str, str],
        signal: Signal | None,
        content_type: str | None,
    ) -> tuple[int, bytes]:
        if signal is None:
            raise _HttpError(
                404, f"no OTLP endpoint at {scope['path']}; use /v1/traces, /v1/logs or /v1/metrics"
            )
        if scope["method"] != "POST":
            raise _HttpError(405, f"{scope['method']} is not supported here; use POST", [(b"allow", b"POST")])
        if content_type is None:
            raise _HttpError(
                415,
                f"unsupported Content-Type {headers.get('content-type', '')!r}; "
                "use application/x-protobuf or application/json",
            )
        try:
            principal = self.service.authenticate(headers.get("authorization"))
        except AuthError as exc:
            raise _HttpError(401, str(exc), [(b"www-authenticate", b"Bearer")]) from None
        try:
            return await self._export(receive, headers, signal, content_type, principal)
        except _HttpError as exc:
            exc.tenant = principal.tenant_name
            raise

    async def _export(
        self,
        receive: Receive,
        headers: dict[str, str],
        signal: Signal,
        content_type: str,
        principal: IngestPrincipal,
    ) -> tuple[int, bytes]:
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_request_bytes:
            raise _HttpError(413, str(RequestTooLarge(self.max_request_bytes)))
        body = await self._read_body(receive)
        try:
            result = await self.service.export(
                signal, principal, body, content_type, headers.get("content-encoding")
            )
        except InvalidPayload as exc:
            raise _HttpError(400, str(exc)) from None
        except RequestTooLarge as exc:
            raise _HttpError(413, str(exc)) from None
        except UnsupportedEncoding as exc:
            raise _HttpError(415, str(exc)) from None
        except Retryable as exc:
            retry_after = [(b"retry-after", str(math.ceil(exc.retry_after)).encode())]
            raise _HttpError(503 if isinstance(exc, Backpressure) else 429, str(exc), retry_after) from None
        return 200, encode_response(signal, content_type, result.rejected, result.message)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _HttpError(400, "client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_request_bytes:
                raise _HttpError(413, str(RequestTooLarge(self.max_request_bytes)))
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
