"""The ingest key cache: lookups from a snapshot, refreshed from the database, kept when it is down."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import OperationalError

from ingest.auth import AuthError, KeyCache, KeySnapshot, load_snapshot
from tenants import logic


@pytest.mark.django_db
def test_lookup_refresh_and_revocation(tenant_key: Any) -> None:
    key, principal = tenant_key
    cache = KeyCache(refresh_seconds=60)
    with pytest.raises(AuthError, match=r"^ingest key not recognised$"):
        cache.authenticate(f"Bearer {key}")  # nothing loaded yet
    cache.start()
    try:
        assert cache.authenticate(f"Bearer {key}") == principal
        assert cache.authenticate(f"bearer   {key} ") == principal
        logic.revoke_key(key)
        assert cache.refresh()
        with pytest.raises(AuthError) as revoked:
            cache.authenticate(f"Bearer {key}")
        assert str(revoked.value) == f"ingest key {logic.display_prefix(key)}… was revoked"
    finally:
        cache.stop()


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "Bearer"])
def test_missing_key(header: str | None) -> None:
    with pytest.raises(AuthError, match=r"^missing Authorization: Bearer <ingest key> header$"):
        KeyCache(refresh_seconds=60).authenticate(header)


@pytest.mark.django_db
def test_database_outage_keeps_the_last_snapshot(tenant_key: Any, caplog: pytest.LogCaptureFixture) -> None:
    key, principal = tenant_key
    calls = 0

    def flaky() -> KeySnapshot:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise OperationalError("could not connect to server")
        return load_snapshot()

    cache = KeyCache(refresh_seconds=60, loader=flaky)
    assert cache.refresh()
    assert not cache.refresh()
    assert cache.authenticate(f"Bearer {key}") == principal
    assert "keeping the last snapshot" in caplog.text
    assert key not in caplog.text
