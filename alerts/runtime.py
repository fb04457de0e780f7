"""Where alert evaluation and delivery run, and what wakes them up between ticks.

Production (a real broker): Celery beat sends ``alerts.evaluate`` and ``alerts.deliver`` every tick to the
workers. Between ticks, ``data_arrived`` (called by ingestd after an insert) sends ``alerts.evaluate`` for
the tenants that got data, and ``after_transitions`` (called when an evaluation commits) sends
``alerts.deliver``, so an error burst is evaluated and notified as soon as it is stored.

Embedded (``CELERY_BROKER_URL`` is ``memory://``): ``serve`` runs an ``InProcessScheduler``: one thread
evaluating, one delivering, each running the same task functions every tick and as soon as it is woken.

Neither path may slow the caller down: ``data_arrived`` runs in the ingest flusher's event loop and only
records the tenant ids and wakes a thread; that thread talks to the broker. A broker that is down is logged
once; the next beat tick evaluates anyway.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence

from django.conf import settings
from django.db import close_old_connections, connection

from alerts import live
from alerts.models import AlertEvent, State

log = logging.getLogger(__name__)

# At most one wake-up evaluation (embedded) or one broker message (production) per this many seconds: a
# busy ingest stream inserts several times a second, and each insert would otherwise trigger its own.
WAKE_MIN_GAP_SECONDS = 0.1
# Delivery due anyway every this many seconds (the beat schedule's value for alerts.deliver).
DELIVERY_INTERVAL_SECONDS = 1.0
# A wake-up message older than this is dropped by the worker: a beat tick has evaluated since.
WAKE_MESSAGE_EXPIRES_SECONDS = 30.0

Job = Callable[[list[str] | None], None]

_scheduler: InProcessScheduler | None = None
_sender: BrokerSender | None = None
_sender_lock = threading.Lock()


def in_process() -> bool:
    """True when there is no broker: the tasks run inside this process (embedded ``serve``)."""
    return str(settings.CELERY_BROKER_URL).startswith("memory://")


def after_transitions(events: Sequence[AlertEvent]) -> None:
    """Called once an evaluation's transitions are committed: push them live, deliver what they queued."""
    if not events:
        return
    live.publish(events)
    if any(event.to_state in (State.FIRING, State.RESOLVED) for event in events):
        kick_delivery()


def kick_delivery() -> None:
    """Deliver due notifications now instead of at the next tick."""
    if in_process():
        if _scheduler is not None:
            _scheduler.wake_delivery()
        return
    try:
        from alerts.tasks import deliver

        deliver.apply_async(retry=False, expires=WAKE_MESSAGE_EXPIRES_SECONDS)
    except Exception as exc:
        log.warning("delivery not sent to the broker, the next tick delivers error=%s", exc)


def data_arrived(tenant_ids: Collection[str]) -> None:
    """Ingest stored rows of these tenants: evaluate their rules soon. Returns at once."""
    if not tenant_ids:
        return
    if in_process():
        if _scheduler is not None:
            _scheduler.wake_evaluation(tenant_ids)
        return
    _broker_sender().add(tenant_ids)


def _broker_sender() -> BrokerSender:
    global _sender
    sender = _sender
    if sender is None:
        with _sender_lock:
            if _sender is None:
                _sender = BrokerSender()
                _sender.start()
            sender = _sender
    return sender


def send_evaluate(tenant_ids: list[str]) -> None:
    """Queue ``alerts.evaluate`` for these tenants (no retry: the caller drops it on failure)."""
    from alerts.tasks import evaluate

    evaluate.apply_async(args=[tenant_ids], retry=False, expires=WAKE_MESSAGE_EXPIRES_SECONDS)


class BrokerSender:
    """A thread sending the tenants that got data as ``alerts.evaluate`` messages, debounced.

    ``add`` only records the ids; the thread sends everything recorded in one message, then waits
    ``min_gap`` seconds before the next one, so a tenant is sent at most once per gap however often its
    data is stored.
    """

    def __init__(
        self, send: Callable[[list[str]], None] = send_evaluate, min_gap: float = WAKE_MIN_GAP_SECONDS
    ) -> None:
        self.send = send
        self.min_gap = min_gap
        self.sent = 0
        self.failed = 0
        self._pending: set[str] = set()
        self._cond = threading.Condition()
        self._stopping = False
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="alerts-wake-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def add(self, tenant_ids: Iterable[str]) -> None:
        with self._cond:
            self._pending.update(tenant_ids)
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                batch, self._pending = sorted(self._pending), set()
            try:
                self.send(batch)
            except Exception as exc:
                self.failed += 1
                if not self._failing:
                    log.warning(
                        "alert evaluation wake-up not sent to the broker; beat still evaluates every tick "
                        "tenants=%d error=%s",
                        len(batch),
                        exc,
                    )
                self._failing = True
            else:
                self.sent += 1
                if self._failing:
                    log.info("alert evaluation wake-ups reach the broker again")
                self._failing = False
            time.sleep(self.min_gap)


class _Worker:
    """One thread running ``job`` every ``interval`` seconds and as soon as it is woken.

    A wake-up with tenant ids runs the job for those tenants (merged with other wake-ups that came in the
    meantime), at most once per ``min_gap``; a tick runs it for every tenant (None).
    """

    def __init__(self, name: str, job: Job, interval: float, min_gap: float) -> None:
        self.name = name
        self.job = job
        self.interval = interval
        self.min_gap = min_gap
        self.runs = 0
        self.errors = 0
        self._cond = threading.Condition()
        self._tenants: set[str] = set()
        self._woken_for_all = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def wake(self, tenant_ids: Iterable[str] | None = None) -> None:
        with self._cond:
            if tenant_ids is None:
                self._woken_for_all = True
            else:
                self._tenants.update(tenant_ids)
            self._cond.notify()

    def _next(self, next_tick: float, not_before: float) -> tuple[list[str] | None, bool] | None:
        """Wait for the next run: (tenant ids or None for all, is_tick); None when stopping."""
        with self._cond:
            while True:
                if self._stopping:
                    return None
                now = time.monotonic()
                if now >= next_tick:
                    self._tenants.clear()
                    self._woken_for_all = False
                    return None, True
                woken = self._woken_for_all or bool(self._tenants)
                if woken and now >= not_before:
                    ids = None if self._woken_for_all else sorted(self._tenants)
                    self._tenants.clear()
                    self._woken_for_all = False
                    return ids, False
                self._cond.wait((min(next_tick, not_before) if woken else next_tick) - now)

    def _run(self) -> None:
        next_tick = time.monotonic()
        not_before = 0.0
        try:
            while True:
                step = self._next(next_tick, not_before)
                if step is None:
                    return
                tenant_ids, is_tick = step
                started = time.monotonic()
                if is_tick:  # fixed rate; a tick that overran its interval is not made up for
                    next_tick += self.interval
                    if next_tick <= started:
                        next_tick = started + self.interval
                not_before = started + self.min_gap
                close_old_connections()
                try:
                    self.job(tenant_ids)
                except Exception:
                    self.errors += 1
                    log.exception(
                        "%s failed tenants=%s", self.name, "all" if tenant_ids is None else tenant_ids
                    )
                self.runs += 1
        finally:
            connection.close()


class InProcessScheduler:
    """Alert evaluation and delivery inside the embedded ``serve`` process (no broker, no workers).

    Runs ``alerts.tasks.evaluate`` every ``OLLYSTACK_ALERT_EVALUATION_SECONDS`` and for the tenants passed to
    ``data_arrived``, and ``alerts.tasks.deliver`` every second and whenever an evaluation queued
    notifications. ``start`` registers it as this process's scheduler; ``stop`` waits for the running jobs.
    """

    def __init__(
        self,
        evaluate: Job | None = None,
        deliver: Job | None = None,
        interval: float | None = None,
        delivery_interval: float = DELIVERY_INTERVAL_SECONDS,
        min_gap: float = WAKE_MIN_GAP_SECONDS,
    ) -> None:
        if interval is None:
            interval = float(settings.OLLYSTACK_ALERT_EVALUATION_SECONDS)
        self.evaluator = _Worker("alerts-evaluate", evaluate or _evaluate_task, interval, min_gap)
        self.dispatcher = _Worker("alerts-deliver", deliver or _deliver_task, delivery_interval, 0.0)
        self._started = False

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Start both threads; ``loop`` is the event loop serving WebSockets (live updates go through it)."""
        global _scheduler
        if loop is not None:
            live.use_loop(loop)
        _scheduler = self
        self.evaluator.start()
        self.dispatcher.start()
        self._started = True
        log.info(
            "alert scheduler started evaluation_seconds=%s delivery_seconds=%s",
            self.evaluator.interval,
            self.dispatcher.interval,
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Let the running jobs finish (up to ``timeout`` seconds), then return."""
        global _scheduler
        if not self._started:
            return
        if _scheduler is self:
            _scheduler = None
        self.evaluator.request_stop()
        self.dispatcher.request_stop()
        deadline = time.monotonic() + timeout
        for worker in (self.evaluator, self.dispatcher):
            if not worker.join(max(0.0, deadline - time.monotonic())):
                log.warning("%s still running at stop; abandoned", worker.name)
        live.use_loop(None)
        self._started = False
        log.info("alert scheduler stopped")

    def wake_evaluation(self, tenant_ids: Iterable[str] | None = None) -> None:
        self.evaluator.wake(tenant_ids)

    def wake_delivery(self) -> None:
        self.dispatcher.wake()


def _evaluate_task(tenant_ids: list[str] | None) -> None:
    from alerts.tasks import evaluate

    evaluate(tenant_ids)


def _deliver_task(tenant_ids: list[str] | None) -> None:
    from alerts.tasks import deliver

    deliver()
