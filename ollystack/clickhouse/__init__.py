"""The storage layer: every ClickHouse call of OllyStack goes through this package."""

from __future__ import annotations

import threading
from pathlib import Path

from ollystack.clickhouse.backends import (
    Backend,
    EmbeddedBackend,
    EngineLockedError,
    HttpBackend,
    NativeBackend,
    QueryError,
    QueryResult,
    Signal,
)

__all__ = [
    "Backend",
    "EmbeddedBackend",
    "EngineLockedError",
    "HttpBackend",
    "NativeBackend",
    "QueryError",
    "QueryResult",
    "Signal",
    "backend_for",
    "get_backend",
    "set_backend",
]

_backend: Backend | None = None
_lock = threading.Lock()


def get_backend() -> Backend:
    """The process-wide backend, built from settings on first use.

    chdb runs one engine per process, bound to one data directory, so the embedded backend must be shared
    by everything in the process rather than opened per request.
    """
    global _backend
    if _backend is None:
        with _lock:
            if _backend is None:
                from django.conf import settings

                _backend = backend_for(settings.OLLYSTACK_CLICKHOUSE_URL, settings.OLLYSTACK_CLICKHOUSE_PATH)
    return _backend


def backend_for(url: str, path: Path | str) -> Backend:
    """The backend an ``OLLYSTACK_CLICKHOUSE_URL`` names: ``http(s)://`` a server's HTTP interface (or
    ``manage.py serve_clickhouse``), any other URL (``clickhouse://…``) the native protocol, empty the
    embedded engine under ``path``."""
    if url.startswith(("http://", "https://")):
        return HttpBackend(url)
    if url:
        return NativeBackend(url)
    return EmbeddedBackend(path)


def set_backend(backend: Backend | None) -> None:
    """Install a backend (process start-up, tests); ``None`` forgets the current one without closing it."""
    global _backend
    with _lock:
        _backend = backend
