"""Fixtures for the tenants app."""

from __future__ import annotations

import asyncio

import pytest

from ingest import quotas
from ingest.quotas import LocalQuotaStore, QuotaStore
from tenants import logic


@pytest.fixture
def quota_store(monkeypatch: pytest.MonkeyPatch) -> LocalQuotaStore:
    """A fresh in-process quota store as the process's store (what the admin and the API read)."""
    store = LocalQuotaStore()
    monkeypatch.setattr(quotas, "_store", store)
    return store


def use_quota(store: QuotaStore, tenant_name: str, records: int, nbytes: int) -> None:
    """Count a request the way the receivers do, with the tenant's current policy."""
    ref, policy = logic.tenant_policy(tenant_name)
    principal = logic.IngestPrincipal(ref.tenant_id, ref.tenant_name, 0, policy)
    asyncio.run(store.check(principal, records, nbytes))
