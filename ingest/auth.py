"""Ingest key → tenant (and the tenant's quota and sampling policy), answered from memory.

The receivers look keys up in a snapshot (key hash → principal) that a background thread reloads from
the Django database every ``OLLYSTACK_KEY_REFRESH_SECONDS``; a lookup is one SHA-256 and one dict lookup,
never a database query. If the database cannot be reached the last snapshot stays in use, so ingest keeps
working through a database restart (a key revoked meanwhile keeps working until the next good refresh).

Each good refresh that changed something is also written to ``OLLYSTACK_VAR_DIR/ingest/config-snapshot.json``
(mode 0600, key hashes only, replaced atomically). A process that starts while the database is down loads
that file instead, so a restart during a database outage still ingests for the keys known before it.

Revoked keys are kept in a second dict so that their senders get "was revoked" rather than "not
recognised"; ``tenants.logic.load_revoked_ingest_keys`` supplies them.
Keys are never logged.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.db import close_old_connections

from ingest.state import CONFIG_SNAPSHOT_FILE, state_dir, write_json_atomic
from tenants import logic as tenant_logic
from tenants.logic import IngestPrincipal, TenantPolicy, display_prefix, hash_key

log = logging.getLogger(__name__)

BEARER = "bearer "
SNAPSHOT_FORMAT = 1


class AuthError(Exception):
    """The request carries no usable ingest key (401 / UNAUTHENTICATED); the message says which case."""


@dataclass(frozen=True)
class KeySnapshot:
    active: dict[str, IngestPrincipal] = field(default_factory=dict)
    revoked: frozenset[str] = frozenset()


def load_snapshot() -> KeySnapshot:
    """Read every ingest key from the database (sync ORM; runs in the refresher thread)."""
    active = tenant_logic.load_ingest_keys()
    revoked = tenant_logic.load_revoked_ingest_keys()
    return KeySnapshot(active=active, revoked=revoked)


def default_snapshot_path() -> Path:
    return state_dir() / CONFIG_SNAPSHOT_FILE


def snapshot_to_json(snapshot: KeySnapshot) -> dict[str, Any]:
    return {
        "format": SNAPSHOT_FORMAT,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "active": {
            key_hash: {
                "tenant_id": p.tenant_id,
                "tenant_name": p.tenant_name,
                "key_id": p.key_id,
                "policy": dataclasses.asdict(p.policy),
            }
            for key_hash, p in snapshot.active.items()
        },
        "revoked": sorted(snapshot.revoked),
    }


def snapshot_from_json(data: dict[str, Any]) -> KeySnapshot:
    """The snapshot in a file written by ``snapshot_to_json``; ``ValueError`` if it is not one."""
    if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"not a format {SNAPSHOT_FORMAT} key snapshot")
    try:
        policies: dict[str, TenantPolicy] = {}
        active = {}
        for key_hash, entry in data["active"].items():
            tenant_id = str(entry["tenant_id"])
            policy = policies.get(tenant_id)
            if policy is None:
                policy = policies[tenant_id] = TenantPolicy(**entry["policy"])
            active[str(key_hash)] = IngestPrincipal(
                tenant_id, str(entry["tenant_name"]), int(entry["key_id"]), policy
            )
        return KeySnapshot(active=active, revoked=frozenset(str(h) for h in data["revoked"]))
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"malformed key snapshot: {exc!r}") from None


class KeyCache:
    """Key lookups for the receivers; ``snapshot_path`` (default ``OLLYSTACK_VAR_DIR/ingest/
    config-snapshot.json``) keeps the last good snapshot for a start without database."""

    def __init__(
        self,
        refresh_seconds: float,
        loader: Callable[[], KeySnapshot] = load_snapshot,
        snapshot_path: Path | None = None,
    ) -> None:
        self.refresh_seconds = refresh_seconds
        self._loader = loader
        self._snapshot = KeySnapshot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.loaded = False
        self.source = ""  # "database" or "file" once something is loaded
        self.snapshot_path = snapshot_path or default_snapshot_path()
        self._written: KeySnapshot | None = None

    # --- lookups (event loop, hot path) ----------------------------------------------------------
    def authenticate(self, authorization: str | None) -> IngestPrincipal:
        """The principal for an ``Authorization`` header value, or ``AuthError`` saying what is wrong."""
        if not authorization or not authorization[: len(BEARER)].lower() == BEARER:
            raise AuthError("missing Authorization: Bearer <ingest key> header")
        raw = authorization[len(BEARER) :].strip()
        if not raw:
            raise AuthError("missing Authorization: Bearer <ingest key> header")
        digest = hash_key(raw)
        snapshot = self._snapshot
        principal = snapshot.active.get(digest)
        if principal is not None:
            return principal
        if digest in snapshot.revoked:
            raise AuthError(f"ingest key {display_prefix(raw)}… was revoked")
        raise AuthError("ingest key not recognised")

    # --- refresh (background thread) --------------------------------------------------------------
    def refresh(self) -> bool:
        """Reload the snapshot; keep the previous one if the database is unreachable."""
        try:
            snapshot = self._loader()
        except Exception as exc:
            log.warning(
                "ingest key refresh failed, keeping the last snapshot keys=%d error=%s",
                len(self._snapshot.active),
                exc,
            )
            return False
        finally:
            close_old_connections()
        self._snapshot = snapshot  # one reference swap: readers see the old or the new dict, whole
        if self.source == "file":
            log.info("ingest keys reloaded from the database keys=%d", len(snapshot.active))
        self.loaded = True
        self.source = "database"
        self._write_file(snapshot)
        return True

    def _write_file(self, snapshot: KeySnapshot) -> None:
        if snapshot == self._written:
            return
        try:
            write_json_atomic(self.snapshot_path, snapshot_to_json(snapshot), mode=0o600)
        except OSError as exc:
            log.warning("ingest key snapshot not written path=%s error=%s", self.snapshot_path, exc)
            return
        self._written = snapshot

    def load_file(self) -> bool:
        """Use the last snapshot written to disk (the database was unreachable at start)."""
        path = self.snapshot_path
        try:
            data = json.loads(path.read_text())
            snapshot = snapshot_from_json(data)
        except FileNotFoundError:
            log.error(
                "ingest keys unavailable: the database is unreachable and there is no key snapshot at %s; "
                "every request is refused as 'ingest key not recognised' until the database is back",
                path,
            )
            return False
        except (OSError, ValueError) as exc:
            log.error("ingest key snapshot unusable path=%s error=%s", path, exc)
            return False
        self._snapshot = snapshot
        self._written = snapshot
        self.loaded = True
        self.source = "file"
        log.warning(
            "database unreachable: ingest keys loaded from the snapshot file path=%s written_at=%s keys=%d; "
            "new keys, revocations and policy changes apply once the database is back",
            path,
            data.get("written_at", "?"),
            len(snapshot.active),
        )
        return True

    def start(self) -> None:
        """Load once now (so the first request finds its key), then keep refreshing in a thread.

        Without a database, the snapshot file stands in until a refresh succeeds."""
        if not self.refresh() and not self.loaded:
            self.load_file()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ingest-key-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            self.refresh()
