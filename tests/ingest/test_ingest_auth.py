"""The ingest key cache: lookups from a snapshot, refreshed from the database, kept when it is down."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError

from ingest.auth import AuthError, KeyCache, KeySnapshot, load_snapshot
from tenants import logic
from tenants.logic import TenantPolicy


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


# --- the snapshot file: a start during a database outage ------------------------------------------


def down() -> KeySnapshot:
    raise OperationalError("could not connect to server: Connection refused")


@pytest.mark.django_db
def test_each_changed_snapshot_is_written_privately(tenant_key: Any, tmp_path: Path) -> None:
    key, principal = tenant_key
    policy = TenantPolicy(rate_limit_per_second=50, daily_bytes_cap=10**9, trace_sample_rate=0.5)
    logic.set_tenant_policy(principal.tenant_id, policy)
    path = tmp_path / "ingest" / "config-snapshot.json"
    cache = KeyCache(refresh_seconds=60, snapshot_path=path)
    assert cache.refresh()

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert key not in text
    data = json.loads(text)
    entry = data["active"][logic.hash_key(key)]
    assert entry["tenant_name"] == principal.tenant_name
    assert TenantPolicy(**entry["policy"]) == policy
    assert [p.name for p in path.parent.iterdir()] == ["config-snapshot.json"]  # no temporary left

    before = path.stat()
    assert cache.refresh()
    assert path.stat().st_mtime_ns == before.st_mtime_ns  # nothing changed, nothing written
    logic.revoke_key(key)
    assert cache.refresh()
    assert json.loads(path.read_text())["revoked"] == [logic.hash_key(key)]


@pytest.mark.django_db
def test_a_start_without_database_uses_the_snapshot_file(
    tenant_key: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key, principal = tenant_key
    logic.set_tenant_policy(principal.tenant_id, TenantPolicy(daily_records_cap=1000))
    path = tmp_path / "config-snapshot.json"
    assert KeyCache(refresh_seconds=60, snapshot_path=path).refresh()  # the previous run

    healthy = False
    cache = KeyCache(
        refresh_seconds=60, loader=lambda: load_snapshot() if healthy else down(), snapshot_path=path
    )
    cache.start()
    try:
        found = cache.authenticate(f"Bearer {key}")
        assert found.tenant_id == principal.tenant_id
        assert found.policy == TenantPolicy(daily_records_cap=1000)
        assert cache.source == "file"
        assert "database unreachable: ingest keys loaded from the snapshot file" in caplog.text
        assert str(path) in caplog.text
        assert key not in caplog.text

        healthy = True
        assert cache.refresh()
        assert cache.source == "database"
        assert "ingest keys reloaded from the database" in caplog.text
    finally:
        cache.stop()


@pytest.mark.django_db
def test_a_start_without_database_or_snapshot_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config-snapshot.json"
    cache = KeyCache(refresh_seconds=60, loader=down, snapshot_path=path)
    cache.start()
    cache.stop()
    assert not cache.loaded
    assert f"there is no key snapshot at {path}" in caplog.text

    path.write_text('{"format": 99}')
    cache = KeyCache(refresh_seconds=60, loader=down, snapshot_path=path)
    assert not cache.load_file()
    assert "ingest key snapshot unusable" in caplog.text
    with pytest.raises(AuthError, match="not recognised"):
        cache.authenticate("Bearer olly_ing_whatever")
