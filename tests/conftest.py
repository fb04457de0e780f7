"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ollystack.clickhouse import Backend, Signal, get_backend
from ollystack.clickhouse.migrate import apply_migrations
from ollystack.clickhouse.otlp import frame


@pytest.fixture(scope="session")
def clickhouse() -> Backend:
    """The process-wide backend (embedded engine under the test var dir), schema applied once per session.

    chdb runs one engine per process, so every test shares it; tests isolate themselves by tenant.
    """
    backend = get_backend()
    apply_migrations(backend, log=lambda _msg: None)
    # Test data is dated 2023 (fixed timestamps): retention TTL would delete it in a background merge at
    # any moment. tests/tenants/test_retention.py proves the TTL on an engine of its own.
    backend.command("SYSTEM STOP TTL MERGES")
    return backend


@pytest.fixture
def tenant_id() -> str:
    """A fresh tenant per test, instead of truncating tables."""
    return str(uuid.uuid4())


@pytest.fixture
def insert_requests(clickhouse: Backend, tmp_path: Path) -> Callable[..., int]:
    """Frame ``(tenant_id, request)`` pairs into one segment file and insert it like the ingest path does."""

    def _insert(signal: Signal, *pairs: tuple[str, Any], token: str | None = None) -> int:
        path = tmp_path / f"{uuid.uuid4().hex}.seg"
        path.write_bytes(b"".join(frame(t, r.SerializeToString()) for t, r in pairs))
        return clickhouse.insert_otlp_segment(signal, path, token or path.stem)

    return _insert
