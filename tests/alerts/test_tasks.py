"""The alert runtime: Celery tasks, the in-process scheduler of `serve`, the ingest wake-up hook and the
debounced broker sender of ingestd."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts import runtime, tasks
from alerts.logic import ChannelSpec, RuleSpec, create_channel, create_rule
from alerts.models import AlertState, ChannelKind, Notification, NotificationStatus, RedFigure, State
from alerts.runtime import BrokerSender, InProcessScheduler
from ingest.pipeline import Pipeline
from ollystack.celery import app
from ollystack.clickhouse import Backend, Signal
from tenants import logic as tenants
from tenants.logic import IngestPrincipal
from tests.alerts.recorder import Recorder
from tests.alerts.test_alert_queries import NS, Spans
from tests.ingest.conftest import logs_request, run_pipeline, trace_request

WAIT = 10.0


class Calls:
    """Records the tenant ids a job was run with; lets a test wait for a condition on them."""

    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[list[str] | None] = []
        self.fail_first = fail_first
        self._changed = threading.Condition()

    def __call__(self, tenant_ids: list[str] | None) -> None:
        with self._changed:
            self.calls.append(tenant_ids)
            self._changed.notify_all()
        if len(self.calls) <= self.fail_first:
            raise RuntimeError("evaluation broke")

    def wait(self, condition: Any, timeout: float = WAIT) -> list[list[str] | None]:
        with self._changed:
            assert self._changed.wait_for(lambda: condition(self.calls), timeout), self.calls
            return list(self.calls)


@pytest.fixture
def scheduler() -> Iterator[Any]:
    started: list[InProcessScheduler] = []

    def make(**options: Any) -> tuple[InProcessScheduler, Calls, Calls]:
        evaluate, deliver = Calls(options.pop("fail_first", 0)), Calls()
        sched = InProcessScheduler(evaluate=evaluate, deliver=deliver, **options)
        sched.start()
        started.append(sched)
        return sched, evaluate, deliver

    yield make
    for sched in started:
        sched.stop()


def test_the_scheduler_evaluates_and_delivers_every_tick_until_stopped(scheduler: Any) -> None:
    sched, evaluate, deliver = scheduler(interval=0.02, delivery_interval=0.02)
    registered = runtime._scheduler is sched
    assert registered
    assert evaluate.wait(lambda calls: len(calls) >= 3)[:3] == [None, None, None]  # a tick: every tenant
    assert deliver.wait(lambda calls: len(calls) >= 3)[:3] == [None, None, None]
    sched.stop()
    assert runtime._scheduler is None
    assert not sched.evaluator._thread.is_alive()
    assert not sched.dispatcher._thread.is_alive()
    after = (len(evaluate.calls), len(deliver.calls))
    threading.Event().wait(0.1)
    assert (len(evaluate.calls), len(deliver.calls)) == after


def test_data_arrived_wakes_the_evaluator_for_those_tenants_only(scheduler: Any) -> None:
    _, evaluate, _ = scheduler(interval=3600)
    evaluate.wait(lambda calls: calls == [None])  # the first tick, at start
    runtime.data_arrived(["tenant-b", "tenant-a"])
    runtime.data_arrived(["tenant-a", "tenant-c"])
    everyone = {"tenant-a", "tenant-b", "tenant-c"}
    woken = evaluate.wait(lambda calls: {t for c in calls[1:] for t in c or ()} == everyone)[1:]
    assert None not in woken  # no extra full evaluation
    assert woken[0] in (["tenant-a", "tenant-b"], ["tenant-a", "tenant-b", "tenant-c"])  # merged and sorted


def test_wake_ups_are_merged_while_an_evaluation_runs(scheduler: Any) -> None:
    release = threading.Event()
    calls = Calls()

    def slow(tenant_ids: list[str] | None) -> None:
        calls(tenant_ids)
        if tenant_ids == ["first"]:
            release.wait(WAIT)

    sched = InProcessScheduler(evaluate=slow, deliver=Calls(), interval=3600, min_gap=0)
    sched.start()
    try:
        calls.wait(lambda c: c == [None])
        sched.wake_evaluation(["first"])
        calls.wait(lambda c: len(c) == 2)
        for tenant in ("x", "y", "x", "z"):
            sched.wake_evaluation([tenant])
        release.set()
        assert calls.wait(lambda c: len(c) == 3) == [None, ["first"], ["x", "y", "z"]]
    finally:
        release.set()
        sched.stop()


def test_a_failing_evaluation_is_logged_and_the_next_one_runs(
    scheduler: Any, caplog: pytest.LogCaptureFixture
) -> None:
    sched, evaluate, _ = scheduler(interval=3600, fail_first=1)
    evaluate.wait(lambda calls: calls == [None])
    sched.wake_evaluation(["t1"])
    evaluate.wait(lambda calls: calls == [None, ["t1"]])
    assert sched.evaluator.errors == 1
    assert "alerts-evaluate failed tenants=all" in caplog.text
    assert "RuntimeError: evaluation broke" in caplog.text


@pytest.mark.django_db
def test_committed_transitions_wake_the_dispatcher(scheduler: Any) -> None:
    from alerts.models import AlertEvent, State

    _, _, deliver = scheduler(interval=3600, delivery_interval=3600)
    deliver.wait(lambda calls: calls == [None])
    pending = AlertEvent(tenant_id=uuid.uuid4(), rule_id=1, from_state=State.INACTIVE, to_state=State.PENDING)
    runtime.after_transitions([pending])  # nothing to deliver for a pending alert
    threading.Event().wait(0.1)
    assert deliver.calls == [None]
    firing = AlertEvent(tenant_id=uuid.uuid4(), rule_id=1, from_state=State.PENDING, to_state=State.FIRING)
    runtime.after_transitions([firing])
    deliver.wait(lambda calls: len(calls) == 2)


def test_without_a_scheduler_the_hooks_do_nothing() -> None:
    assert runtime._scheduler is None
    runtime.data_arrived(["t"])  # e.g. ingest tests, manage.py commands: no evaluator in this process
    runtime.kick_delivery()


# --- the tasks, on real rules and data --------------------------------------------------------------------


def error_burst_now() -> Any:
    """20 failed and 20 good checkout requests in the second before now."""
    at = (time.time_ns() // NS - 1) * NS
    return Spans().add("checkout", at, count=20, error=True).add("checkout", at, count=20).req


def checkout_errors_rule(target: Recorder) -> tuple[str, int]:
    """A tenant whose rule "checkout errors" (error rate > 0.2 over 5 s) notifies a webhook."""
    tenant = tenants.create_tenant(f"rt-{uuid.uuid4().hex[:8]}")
    channel = create_channel(
        tenant.tenant_id, ChannelSpec(name="hook", kind=ChannelKind.WEBHOOK, url=target.url, secret="s3cret")
    )
    rule = create_rule(
        tenant.tenant_id,
        RuleSpec(
            name="checkout errors",
            service="checkout",
            red_figure=RedFigure.ERROR_RATE,
            threshold=0.2,
            window_seconds=5,
            channel_ids=(channel.pk,),
        ),
    )
    return tenant.tenant_id, rule.pk


@pytest.mark.django_db
def test_the_tasks_are_registered_and_run_evaluation_and_delivery(
    insert_requests: Any, clickhouse: Backend
) -> None:
    assert {"alerts.evaluate", "alerts.deliver"} <= set(app.tasks)
    with Recorder() as target:
        tenant_id, rule_id = checkout_errors_rule(target)
        insert_requests(Signal.TRACES, (tenant_id, error_burst_now()))
        app.tasks["alerts.evaluate"].apply(args=[[tenant_id]]).get()
        state = AlertState.objects.get(rule_id=rule_id)
        assert (state.state, state.value) == (State.FIRING, 0.5)
        assert Notification.objects.get(rule_id=rule_id).status == NotificationStatus.PENDING
        tasks.deliver.apply().get()
        [request] = target.wait_for(1)
        assert request.json["status"] == "firing"
        assert Notification.objects.get(rule_id=rule_id).status == NotificationStatus.DELIVERED


@pytest.mark.django_db(transaction=True)
def test_stored_data_wakes_the_in_process_evaluator_which_wakes_delivery(
    tmp_path: Path, clickhouse: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """Ticks an hour apart: only the ingest wake-up and the transition's delivery kick can notify."""
    caplog.set_level(logging.ERROR, logger="alerts.runtime")
    with Recorder() as target:
        tenant_id, rule_id = checkout_errors_rule(target)
        sched = InProcessScheduler(interval=3600, delivery_interval=3600)
        sched.start()
        try:
            deadline = time.monotonic() + WAIT
            while not (sched.evaluator.runs and sched.dispatcher.runs) and time.monotonic() < deadline:
                time.sleep(0.01)  # the first ticks, at start, before the data
            assert (sched.evaluator.runs, sched.dispatcher.runs) == (1, 1)
            tenant = IngestPrincipal(tenant_id=tenant_id, tenant_name="rt", key_id=1)

            async def burst(pipeline: Pipeline) -> None:
                await pipeline.submit(Signal.TRACES, tenant, error_burst_now().SerializeToString(), 40)

            run_pipeline(tmp_path, clickhouse, burst, max_rows=40, on_written=runtime.data_arrived)
            [request] = target.wait_for(1)
        finally:
            sched.stop()
        assert request.json["status"] == "firing"
        assert [alert["labels"]["alertname"] for alert in request.json["alerts"]] == ["checkout errors"]
        assert AlertState.objects.get(rule_id=rule_id).state == State.FIRING
        # The test database is SQLite in memory with a shared cache, where a writer meeting the other
        # thread's lock fails at once ("database table is locked") instead of waiting as on a database file
        # (serve's) or PostgreSQL: such a run is retried by the next wake-up or tick. Nothing else may fail.
        failures = [repr(r.exc_info[1] if r.exc_info else r.msg) for r in caplog.records]
        assert len(failures) == sched.evaluator.errors + sched.dispatcher.errors
        assert [f for f in failures if "database table is locked" not in f] == []


# --- the ingest hook -------------------------------------------------------------------------------------


def principal() -> IngestPrincipal:
    return IngestPrincipal(tenant_id=str(uuid.uuid4()), tenant_name="acme", key_id=1)


def test_the_pipeline_reports_the_tenants_of_each_insert(tmp_path: Path, clickhouse: Backend) -> None:
    first, second, third = principal(), principal(), principal()
    reported: list[tuple[str, ...]] = []

    async def body(pipeline: Pipeline) -> None:
        pipeline.on_written = lambda tenant_ids: reported.append(tuple(sorted(tenant_ids)))
        traces = trace_request(spans=2).SerializeToString()
        await pipeline.submit(Signal.TRACES, first, traces, 2)
        await pipeline.submit(Signal.TRACES, second, traces, 2)
        for _ in range(500):
            if reported:
                break
            await asyncio.sleep(0.01)
        await pipeline.submit(Signal.LOGS, third, logs_request(records=1).SerializeToString(), 2)

    run_pipeline(tmp_path, clickhouse, body, max_rows=4)
    assert reported == [tuple(sorted((first.tenant_id, second.tenant_id))), (third.tenant_id,)]


def test_a_failing_hook_does_not_stop_the_flusher(
    tmp_path: Path, clickhouse: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(tenant_ids: Any) -> None:
        raise ValueError("listener broke")

    async def body(pipeline: Pipeline) -> None:
        pipeline.on_written = broken
        for _ in range(2):
            await pipeline.submit(Signal.TRACES, principal(), trace_request(spans=2).SerializeToString(), 2)

    pipeline = run_pipeline(tmp_path, clickhouse, body, max_rows=2)
    assert pipeline.inserted_segments == 2
    assert caplog.text.count("on_written callback failed signal=traces") == 2


# --- production: wake-ups through the broker -------------------------------------------------------------


class Sends:
    def __init__(self, fail: int = 0) -> None:
        self.batches: list[list[str]] = []
        self.fail = fail
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self._changed = threading.Condition()

    def __call__(self, tenant_ids: list[str]) -> None:
        self.entered.set()
        self.release.wait(WAIT)
        with self._changed:
            self.batches.append(tenant_ids)
            self._changed.notify_all()
        if len(self.batches) <= self.fail:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    def wait(self, count: int) -> list[list[str]]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.batches) >= count, WAIT), self.batches
            return list(self.batches)


@pytest.fixture
def sender() -> Iterator[Any]:
    made: list[BrokerSender] = []

    def make(sends: Sends) -> BrokerSender:
        made.append(BrokerSender(send=sends, min_gap=0.01))
        made[-1].start()
        return made[-1]

    yield make
    for one in made:
        one.stop()


def test_tenants_arriving_while_a_send_is_under_way_travel_together_in_the_next_one(sender: Any) -> None:
    sends = Sends()
    sends.release.clear()
    wake = sender(sends)
    wake.add(["t1"])
    assert sends.entered.wait(WAIT)
    for tenant in ("t3", "t2", "t3", "t2"):
        wake.add([tenant])  # returns at once although the broker is slow
    sends.release.set()
    assert sends.wait(2) == [["t1"], ["t2", "t3"]]
    threading.Event().wait(0.1)
    assert len(sends.batches) == 2
    assert wake.sent == 2


def test_a_broker_that_is_down_is_logged_once_and_sending_goes_on(
    sender: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="alerts.runtime")
    sends = Sends(fail=2)
    wake = sender(sends)
    wake.add(["t1"])
    sends.wait(1)
    wake.add(["t2"])
    sends.wait(2)
    wake.add(["t3"])
    assert sends.wait(3) == [["t1"], ["t2"], ["t3"]]
    deadline = time.monotonic() + WAIT  # the sender counts and logs a send after it returns
    while "reach the broker again" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.01)
    assert caplog.text.count("alert evaluation wake-up not sent to the broker") == 1
    assert "error=Error 111 connecting to 127.0.0.1:6379. Connection refused." in caplog.text
    assert (wake.failed, wake.sent) == (2, 1)
    assert "alert evaluation wake-ups reach the broker again" in caplog.text


def test_with_a_broker_ingest_wake_ups_travel_as_evaluate_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """ingestd's path, through the test profile's in-memory broker (the mode is forced, not the URL)."""
    assert app.conf.broker_url == "memory://"
    with app.connection_for_write() as conn, conn.SimpleQueue("celery") as queue:
        queue.clear()
        monkeypatch.setattr(runtime, "in_process", lambda: False)
        try:
            runtime.data_arrived(["tenant-2", "tenant-1"])
            message = queue.get(timeout=WAIT)
        finally:
            sender, runtime._sender = runtime._sender, None
            assert sender is not None
            sender.stop()
        message.ack()
        assert message.headers["task"] == "alerts.evaluate"
        assert message.headers["expires"] is not None  # a stale wake-up is dropped by the worker
        args, kwargs, _ = message.payload
        assert (args, kwargs) == ([["tenant-1", "tenant-2"]], {})
