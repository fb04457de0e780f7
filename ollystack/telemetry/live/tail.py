"""WebSocket live tail of logs: ``ws/logs/tail/?tenant=<name>&service=…&severity=…&text=…``.

A signed-in member of the tenant (any role) receives the records inserted from now on that match the
filters, as ``{"type": "logs", "records": [...]}`` (the record JSON of /api/v1/logs, oldest first), within
``POLL_SECONDS`` of their arrival in the engine. Anyone else gets one ``{"type": "error", "error": ...}``
message saying what to do, then the socket is closed with code 4401 (not signed in), 4403 (not a member)
or 4400 (a filter is malformed).

Sockets of one tenant asking the same filters share one feed: one query per feed and tick, however many
people watch (a team on the same incident). A feed polls in a worker thread (engine calls block) and stops
when its last socket goes.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ollystack.telemetry.api.params import parse_severity
from ollystack.telemetry.log_tail import TailCursor, TailFilter, poll
from tenants.sockets import CLOSE_MALFORMED, MemberSocket

log = logging.getLogger(__name__)

POLL_SECONDS = 0.3
MAX_TEXT = 200

Push = Callable[[dict[str, Any]], Awaitable[None]]


class Feed:
    """One tenant's records matching one filter, polled for every socket that asked for them."""

    def __init__(self, tenant_id: str, tail: TailFilter) -> None:
        self.tenant_id = tenant_id
        self.tail = tail
        self.cursor = TailCursor.now()
        self.subscribers: dict[int, Push] = {}
        self.task: asyncio.Task[None] | None = None
        self.failing = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.subscribers:
            started = loop.time()
            message = await self._next()
            if message is not None:
                for push in list(self.subscribers.values()):
                    try:
                        await push(message)
                    except Exception as exc:  # one closed socket must not stop the others' feed
                        log.info("live tail push failed tenant=%s error=%r", self.tenant_id, exc)
            await asyncio.sleep(max(0.0, POLL_SECONDS - (loop.time() - started)))

    async def _next(self) -> dict[str, Any] | None:
        try:
            records = await asyncio.to_thread(poll, self.tenant_id, self.tail, self.cursor)
        except Exception as exc:
            log.warning("live tail poll failed tenant=%s error=%r", self.tenant_id, exc)
            if self.failing:
                return None
            self.failing = True
            return {"type": "error", "error": "reading new log records failed; retrying"}
        self.failing = False
        return {"type": "logs", "records": records} if records else None


_feeds: dict[tuple[int, str, TailFilter], Feed] = {}
_tokens = itertools.count()


def subscribe(tenant_id: str, tail: TailFilter, push: Push) -> Callable[[], None]:
    """Start receiving ``tail``'s new records through ``push``; call the result to stop."""
    loop = asyncio.get_running_loop()
    key = (id(loop), tenant_id, tail)
    feed = _feeds.get(key)
    if feed is None or feed.task is None or feed.task.done():
        feed = _feeds[key] = Feed(tenant_id, tail)
    token = next(_tokens)
    feed.subscribers[token] = push
    if feed.task is None:
        feed.task = loop.create_task(feed.run(), name=f"live-tail-{tenant_id}")

    def unsubscribe() -> None:
        feed.subscribers.pop(token, None)
        if not feed.subscribers and _feeds.get(key) is feed:
            del _feeds[key]

    return unsubscribe


def feed_count() -> int:
    return len(_feeds)


class LiveTailConsumer(MemberSocket):
    unsubscribe: Callable[[], None] | None = None

    async def connect(self) -> None:
        access = await self.member("live log records")
        if access is None:
            return
        try:
            tail = tail_filter(
                self.query_param("service"), self.query_param("severity"), self.query_param("text")
            )
        except ValueError as exc:
            await self.refuse(CLOSE_MALFORMED, str(exc))
            return
        await self.accept()
        self.unsubscribe = subscribe(access.tenant_id, tail, self.send_json)
        log.debug("live tail opened tenant=%s filter=%s", access.tenant_name, tail)

    async def disconnect(self, code: int) -> None:
        if self.unsubscribe is not None:
            self.unsubscribe()
            self.unsubscribe = None

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The stream is one-way; messages from the client are ignored."""


def tail_filter(service: str | None, severity: str | None, text: str | None) -> TailFilter:
    """The filters of a tail from its query string; ``ValueError`` names the bad one."""
    try:
        severity_min = parse_severity(severity) if severity else None
    except ValueError as exc:
        raise ValueError(f"severity: {exc}") from None
    if text is not None and len(text) > MAX_TEXT:
        raise ValueError(f"text: {len(text)} characters; at most {MAX_TEXT}")
    return TailFilter(service=service, severity_min=severity_min, text=text)
