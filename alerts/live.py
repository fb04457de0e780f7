"""Alert state changes pushed to browsers over WebSockets (Channels), as they are committed.

Every transition goes to the channel-layer group ``alerts.<tenant id>``; the consumer in
``alerts.consumers`` joins a signed-in member's socket to their tenant's group and forwards the messages
as JSON::

    {"type": "alert.state", "rule_id": 7, "rule": "checkout errors", "series": "", "labels": {...},
     "from": "pending", "to": "firing", "value": 0.42, "at": "2025-01-01T12:00:00+00:00"}

Publishing never fails its caller: a transition is already committed when it is published, and a channel
layer that is down only costs the live view an update (the REST API still has the state).

The embedded ``serve`` process uses the in-memory layer, whose queues belong to the event loop that serves
the WebSockets; ``use_loop`` names that loop, and messages published from other threads (the evaluator) are
handed to it. Elsewhere (production: the Redis layer) messages are sent from the calling thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from alerts.models import AlertEvent, Rule

log = logging.getLogger(__name__)

MESSAGE_TYPE = "alert.state"

_loop: asyncio.AbstractEventLoop | None = None
_tasks: set[asyncio.Task[None]] = set()  # sends in flight on the current loop (kept from the collector)


def group_name(tenant_id: str) -> str:
    """The channel-layer group of one tenant's live alert states."""
    return f"alerts.{tenant_id}"


def use_loop(loop: asyncio.AbstractEventLoop | None) -> None:
    """Publish through ``loop`` (the loop serving this process's WebSockets); None: the calling thread."""
    global _loop
    _loop = loop


def message(event: AlertEvent, rule_name: str) -> dict[str, Any]:
    """The message for one transition (JSON- and msgpack-safe: the Redis layer serialises it)."""
    return {
        "type": MESSAGE_TYPE,
        "rule_id": event.rule_id,
        "rule": rule_name,
        "series": event.series,
        "labels": dict(event.labels or {}),
        "from": event.from_state,
        "to": event.to_state,
        "value": event.value,
        "at": event.at.isoformat(),
    }


def publish(events: Sequence[AlertEvent]) -> None:
    """Send every event to its tenant's group. Logs and returns on any failure."""
    if not events:
        return
    try:
        messages = _messages(events)
        layer = get_channel_layer()
        if layer is None:
            return
        loop = _loop
        if loop is not None and not loop.is_closed():
            if _running_loop() is loop:
                _spawn(_send(layer, messages))
            else:
                future = asyncio.run_coroutine_threadsafe(_send(layer, messages), loop)
                future.add_done_callback(_log_failure)
            return
        if _running_loop() is not None:  # called from async code: do not block its loop
            _spawn(_send(layer, messages))
            return
        async_to_sync(_send)(layer, messages)
    except Exception as exc:
        log.warning("live alert update not published events=%d error=%s", len(events), exc)


def _messages(events: Sequence[AlertEvent]) -> list[tuple[str, dict[str, Any]]]:
    names: dict[int, str] = {}
    missing = set()
    for event in events:
        if AlertEvent.rule.is_cached(event):
            names[event.rule_id] = event.rule.name
        else:
            missing.add(event.rule_id)
    if missing:
        names.update(Rule.objects.filter(pk__in=missing).values_list("id", "name"))
    return [
        (group_name(str(event.tenant_id)), message(event, names.get(event.rule_id, ""))) for event in events
    ]


async def _send(layer: Any, messages: list[tuple[str, dict[str, Any]]]) -> None:
    for group, body in messages:
        await layer.group_send(group, body)


def _spawn(coro: Any) -> None:
    task = asyncio.get_running_loop().create_task(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    task.add_done_callback(_log_failure)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _log_failure(future: Future[None] | asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.warning("live alert update not published error=%s", future.exception())
