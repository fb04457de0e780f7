"""Ingest key → tenant, answered from memory.

The receivers look keys up in a snapshot (key hash → principal) that a background thread reloads from
the Django database every ``OLLYSTACK_KEY_REFRESH_SECONDS``; a lookup is one SHA-256 and one dict lookup,
never a database query. If the database cannot be reached the last snapshot stays in use, so ingest keeps
working through a database restart (a key revoked meanwhile keeps working until the next good refresh).

Revoked keys are kept in a second dict so that their senders get "was revoked" rather than "not
recognised"; ``tenants.logic.load_revoked_ingest_keys`` supplies them.
Keys are never logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import close_old_connections

from tenants import logic as tenant_logic
from tenants.logic import IngestPrincipal, display_prefix, hash_key

log = logging.getLogger(__name__)

BEARER = "bearer "


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


class KeyCache:
    def __init__(self, refresh_seconds: float, loader: Callable[[], KeySnapshot] = load_snapshot) -> None:
        self.refresh_seconds = refresh_seconds
        self._loader = loader
        self._snapshot = KeySnapshot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.loaded = False

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
        self.loaded = True
        return True

    def start(self) -> None:
        """Load once now (so the first request finds its key), then keep refreshing in a thread."""
        self.refresh()
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
