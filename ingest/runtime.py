"""The ingest process body, shared by ``serve`` (embedded, with the web app) and ``ingestd`` (production).

Everything runs in one asyncio loop: the OTLP/gRPC server, uvicorn servers for the OTLP/HTTP receiver, the
self-metrics endpoint and (``serve`` only) the Django ASGI app, the pipeline's flushers; the ingest key
refresher is a thread because the ORM is synchronous. Shutdown order: stop accepting (all listeners),
stop the alert scheduler (``serve`` only), drain the pipeline into ClickHouse, close the storage backend.

Every insert tells ``alerts.runtime.data_arrived`` which tenants got data, so their alert rules are
evaluated right away (in-process for ``serve``, through the broker for ``ingestd``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import uvicorn
from django.conf import settings

from ingest import metrics
from ingest.auth import KeyCache
from ingest.grpc_server import build_server
from ingest.http_server import OtlpHttpApp
from ingest.pipeline import Pipeline
from ingest.service import IngestService

log = logging.getLogger(__name__)

GRPC_GRACE_SECONDS = 5.0


class PortInUse(RuntimeError):
    pass


@dataclass(frozen=True)
class Listener:
    name: str  # as logged: listening <name>=host:port
    port: int
    variable: str  # the setting that moves it


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process that hosts it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_socket(host: str, listener: Listener) -> socket.socket:
    """A listening-ready TCP socket, or ``PortInUse`` naming the port and the variable to change."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, listener.port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"port {listener.port} on {host} ({listener.name}) is already in use; stop the other "
                f"process or set {listener.variable} to a free port"
            ) from None
        raise PortInUse(
            f"cannot listen on {_format_address(host, listener.port)} ({listener.name}): {exc}"
        ) from None
    sock.set_inheritable(True)
    return sock


class IngestRuntime:
    """Receivers, pipeline, key cache and metrics (and optionally the web app) in the running loop."""

    def __init__(self, web_app: Any = None, backend: Any = None, scheduler: Any = None) -> None:
        from alerts.runtime import data_arrived

        self.host: str = settings.OLLYSTACK_BIND
        self.max_request_bytes: int = settings.OLLYSTACK_MAX_REQUEST_BYTES
        self.web_app = web_app
        self.backend = backend
        self.keys = KeyCache(settings.OLLYSTACK_KEY_REFRESH_SECONDS)
        self.pipeline = Pipeline.from_settings(backend=backend, on_written=data_arrived)
        self.scheduler = scheduler  # alerts.runtime.InProcessScheduler: start() and stop(), or None
        self.service = IngestService(self.keys, self.pipeline, self.max_request_bytes)
        self.addresses: dict[str, str] = {}
        self.stop_event = asyncio.Event()
        self._uvicorn: list[_Server] = []
        self._grpc: grpc.aio.Server | None = None

    def request_stop(self) -> None:
        if self.stop_event.is_set():
            log.info("already stopping; waiting for the WAL to drain")
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)

    async def run(self) -> None:
        """Bind, serve until ``request_stop`` (or a listener dies), then shut down in order."""
        listeners = [
            (Listener("otlp_http", settings.OLLYSTACK_OTLP_HTTP_PORT, "OLLYSTACK_OTLP_HTTP_PORT"), "otlp"),
            (Listener("metrics", settings.OLLYSTACK_METRICS_PORT, "OLLYSTACK_METRICS_PORT"), "metrics"),
        ]
        if self.web_app is not None:
            listeners.insert(0, (Listener("web", settings.OLLYSTACK_HTTP_PORT, "OLLYSTACK_HTTP_PORT"), "web"))
        grpc_listener = Listener("otlp_grpc", settings.OLLYSTACK_OTLP_GRPC_PORT, "OLLYSTACK_OTLP_GRPC_PORT")

        sockets: list[tuple[Listener, str, socket.socket]] = []
        try:
            for listener, app_name in listeners:
                sockets.append((listener, app_name, bind_socket(self.host, listener)))
            bind_socket(self.host, grpc_listener).close()  # fail fast with the same message as the others
        except PortInUse:
            for _, _, sock in sockets:
                sock.close()
            raise

        await asyncio.to_thread(self.keys.start)
        await self.pipeline.start()
        tasks: list[asyncio.Task[None]] = []
        try:
            if self.scheduler is not None:
                self.scheduler.start(asyncio.get_running_loop())
            self._grpc, grpc_port = self._start_grpc(grpc_listener)
            await self._grpc.start()
            self.addresses["otlp_grpc"] = _format_address(self.host, grpc_port)
            apps = {
                "web": self.web_app,
                "otlp": OtlpHttpApp(self.service, self.max_request_bytes),
                "metrics": metrics.asgi_app,
            }
            for listener, app_name, sock in sockets:
                server = _Server(
                    uvicorn.Config(
                        apps[app_name],
                        lifespan="off",
                        log_config=None,
                        log_level="warning",
                        access_log=False,
                        server_header=False,
                        timeout_graceful_shutdown=10,
                        # the OTLP receiver answers 503 beyond this many requests in progress
                        limit_concurrency=(
                            settings.OLLYSTACK_MAX_CONCURRENT_REQUESTS if app_name == "otlp" else None
                        ),
                    )
                )
                self._uvicorn.append(server)
                tasks.append(asyncio.create_task(server.serve(sockets=[sock]), name=f"serve-{listener.name}"))
                self.addresses[listener.name] = _format_address(self.host, sock.getsockname()[1])
            while not all(server.started for server in self._uvicorn):
                if any(task.done() for task in tasks):
                    break
                await asyncio.sleep(0.01)
            for name in ("web", "otlp_grpc", "otlp_http", "metrics"):
                if name in self.addresses:
                    log.info("listening %s=%s", name, self.addresses[name])
            stop = asyncio.create_task(self.stop_event.wait())
            done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stop and task.exception() is not None:
                    log.error("listener %s stopped unexpectedly error=%s", task.get_name(), task.exception())
            stop.cancel()
        finally:
            await self._shutdown(tasks)
            for _, _, sock in sockets:
                sock.close()

    def _start_grpc(self, listener: Listener) -> tuple[grpc.aio.Server, int]:
        address = _format_address(self.host, listener.port)
        try:
            return build_server(
                self.service, address, self.max_request_bytes, settings.OLLYSTACK_MAX_CONCURRENT_REQUESTS
            )
        except RuntimeError as exc:
            raise PortInUse(
                f"cannot listen on {address} ({listener.name}): {exc}; set {listener.variable} to a free port"
            ) from None

    async def _shutdown(self, tasks: list[asyncio.Task[None]]) -> None:
        log.info("stopping: no new requests, draining the WAL")
        for server in self._uvicorn:
            server.should_exit = True
        if self._grpc is not None:
            await self._grpc.stop(GRPC_GRACE_SECONDS)
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.scheduler is not None:
            await asyncio.to_thread(self.scheduler.stop)
        await self.pipeline.stop()
        await self.service.stop()
        self.keys.stop()
        backend = self.backend
        if backend is None:
            from ollystack.clickhouse import get_backend

            backend = get_backend()
        await asyncio.to_thread(backend.close)
        log.info("stopped wal_bytes=%d", self.pipeline.wal_bytes)


_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter


def release_large_buffers_at_once(threshold: int = 64 << 10) -> bool:
    """Serve allocations of ``threshold`` bytes and more with their own mappings, unmapped when freed.

    Requests are 100 KB-16 MB buffers allocated and freed by many threads (gRPC, the event loop, workers);
    with glibc's default, adaptive threshold they end up in per-thread heaps that never shrink (measured: the
    receive path alone grew ingestd's resident set from 93 to 316 MiB; with this, 197 MiB). glibc only.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):
        return False


def run_process(stderr: Any, web_app: Any = None, backend: Any = None, scheduler: Any = None) -> None:
    """Run an ``IngestRuntime`` as the process's main loop; exit 1 with a clear message if a port is taken."""
    release_large_buffers_at_once()

    async def main() -> None:
        runtime = IngestRuntime(web_app=web_app, backend=backend, scheduler=scheduler)
        runtime.install_signal_handlers()
        await runtime.run()

    try:
        asyncio.run(main())
    except PortInUse as exc:
        stderr.write(str(exc))
        raise SystemExit(1) from None
