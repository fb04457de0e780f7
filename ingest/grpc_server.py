"""OTLP/gRPC receiver (``grpc.aio``) for the trace, logs and metrics ``Export`` methods.

The three services are registered as generic handlers with identity (bytes) (de)serialisers: grpc hands
over the request bytes untouched (after undoing ``grpc-encoding: gzip``), ``ingest.otlp`` validates them,
and the same bytes go to the WAL.

Status codes follow the OTLP specification: UNAUTHENTICATED for key problems, INVALID_ARGUMENT with a
message for malformed payloads, UNAVAILABLE (WAL full) and RESOURCE_EXHAUSTED (tenant throttled) with a
``google.rpc.RetryInfo`` in the status details so that exporters retry after the given delay. A message
larger than ``OLLYSTACK_MAX_REQUEST_BYTES`` is refused by grpc itself with RESOURCE_EXHAUSTED and *no*
RetryInfo, which OTLP exporters treat as not retryable — right for a request that will never fit.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from ingest import metrics
from ingest.auth import AuthError
from ingest.otlp import (
    PROTOBUF,
    SPECS,
    InvalidPayload,
    RequestTooLarge,
    SignalSpec,
    UnsupportedEncoding,
    encode_response,
)
from ingest.pipeline import Backpressure, Retryable
from ingest.service import IngestService

log = logging.getLogger(__name__)

STATUS_DETAILS_KEY = "grpc-status-details-bin"
# The OpenTelemetry Python exporter reads the delay only from this trailer (a bare RetryInfo).
RETRY_INFO_KEY = "google.rpc.retryinfo-bin"


def _retry_info(retry_after: float) -> error_details_pb2.RetryInfo:
    seconds = int(retry_after)
    delay = duration_pb2.Duration(seconds=seconds, nanos=int((retry_after - seconds) * 1e9))
    return error_details_pb2.RetryInfo(retry_delay=delay)


def status_details(code: grpc.StatusCode, message: str, retry_after: float | None = None) -> bytes:
    """A serialized ``google.rpc.Status`` for the ``grpc-status-details-bin`` trailer."""
    status = status_pb2.Status(code=code.value[0], message=message)
    if retry_after is not None:
        detail = any_pb2.Any()
        detail.Pack(_retry_info(retry_after))
        status.details.append(detail)
    return bytes(status.SerializeToString())


def _authorization(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    for item in context.invocation_metadata() or ():
        if item.key == "authorization":
            value = item.value
            return value.decode() if isinstance(value, bytes) else value
    return None


def _handler(service: IngestService, spec: SignalSpec) -> grpc.RpcMethodHandler:
    signal = spec.signal

    async def export(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        async def fail(code: grpc.StatusCode, message: str, retry_after: float | None = None) -> NoReturn:
            metrics.REQUESTS.labels("grpc", signal.value, code.name).inc()
            trailer: tuple[tuple[str, bytes], ...] = (
                (STATUS_DETAILS_KEY, status_details(code, message, retry_after)),
            )
            if retry_after is not None:
                trailer += ((RETRY_INFO_KEY, _retry_info(retry_after).SerializeToString()),)
            await context.abort(code, message, trailing_metadata=trailer)
            raise AssertionError("context.abort returned")

        try:
            principal = service.authenticate(_authorization(context))
        except AuthError as exc:
            await fail(grpc.StatusCode.UNAUTHENTICATED, str(exc))
        try:
            result = await service.export(signal, principal, request, PROTOBUF)
        except (InvalidPayload, UnsupportedEncoding) as exc:
            log.info(
                "otlp request rejected protocol=grpc tenant=%s signal=%s error=%s",
                principal.tenant_name,
                signal.value,
                exc,
            )
            await fail(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except RequestTooLarge as exc:
            await fail(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        except Retryable as exc:
            code = (
                grpc.StatusCode.UNAVAILABLE
                if isinstance(exc, Backpressure)
                else grpc.StatusCode.RESOURCE_EXHAUSTED
            )
            await fail(code, str(exc), exc.retry_after)
        metrics.REQUESTS.labels("grpc", signal.value, "OK").inc()
        return encode_response(signal, PROTOBUF, result.rejected, result.message)

    return grpc.unary_unary_rpc_method_handler(export, request_deserializer=None, response_serializer=None)


def generic_handlers(service: IngestService) -> list[grpc.GenericRpcHandler]:
    handlers = []
    for spec in SPECS.values():
        service_name, method = spec.grpc_method.strip("/").split("/")
        handlers.append(grpc.method_handlers_generic_handler(service_name, {method: _handler(service, spec)}))
    return handlers


def build_server(
    service: IngestService, address: str, max_request_bytes: int, max_concurrent: int | None = None
) -> tuple[grpc.aio.Server, int]:
    """A started-to-be server bound to ``address`` (``host:port``); returns it and the bound port. Beyond
    ``max_concurrent`` calls in progress, new ones get RESOURCE_EXHAUSTED (retryable) from gRPC itself."""
    server = grpc.aio.server(
        maximum_concurrent_rpcs=max_concurrent,
        options=[
            ("grpc.max_receive_message_length", max_request_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    server.add_generic_rpc_handlers(generic_handlers(service))
    port = server.add_insecure_port(address)
    return server, port
