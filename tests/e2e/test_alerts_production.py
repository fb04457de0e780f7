"""Alerting in the production profile, with every process real and separate (``tests/e2e/production.py``):
the engine host, ingestd, a Celery worker, Celery beat and the web app, on PostgreSQL and Redis.

- an error burst through ingestd fires the rule; a signed-in browser's WebSocket on the web process sees
  the transition the worker made (Redis channel layer); the webhook gets exactly one, verifiably signed,
  firing notification while later evaluations keep seeing the condition;
- the worker killed with SIGKILL while it evaluates (many rules: the tick that fires them all is long) and
  restarted: no transition is lost (every rule fires, each exactly once) and no alert is notified twice;
- a target that is down: retried with growing delays, then FAILED, visible through the REST API.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import random
import re
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect
from websockets.typing import Origin

from tests.alerts.recorder import RecordedRequest, Recorder, refused_url
from tests.e2e.production import (
    AlertingProfile,
    CeleryWorker,
    ProductionStack,
    production_stack,
    start_alerting,
    wait_until,
)
from tests.e2e.test_alerts_embedded import LiveStates

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

SERVICE = "checkout"
HOOK = "/hooks/ollystack"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[ProductionStack]:
    with production_stack(tmp_path) as production:
        yield production


@pytest.fixture
def hook() -> Iterator[Recorder]:
    with Recorder(default_status=204) as recorder:
        yield recorder


def webhook_channel(alerting: AlertingProfile, url: str, secret: str = "", **settings: Any) -> int:
    body = {"name": f"hook-{secrets.token_hex(3)}", "kind": "webhook", "url": url, "secret": secret}
    return int(alerting.api.post("/api/v1/alerts/channels", {**body, **settings})["id"])


def error_rate_rule(alerting: AlertingProfile, name: str, channel: int, window_seconds: int = 60) -> int:
    """error rate of SERVICE above 50 % over the window, firing at once (no for duration)."""
    body = {
        "name": name,
        "source": "red",
        "service": SERVICE,
        "red_figure": "error_rate",
        "comparator": ">",
        "threshold": 0.5,
        "window_seconds": window_seconds,
        "for_seconds": 0,
        "severity": "critical",
        "channels": [channel],
    }
    return int(alerting.api.post("/api/v1/alerts/rules", body)["id"])


def notifications_with(hook: Recorder, status: str) -> list[RecordedRequest]:
    return [r for r in hook.requests if isinstance(r.json, dict) and r.json.get("status") == status]


def events(alerting: AlertingProfile, **params: str | int) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in {"limit": 1000, **params}.items())
    found: list[dict[str, Any]] = alerting.api.get(f"/api/v1/alerts/events?{query}")["events"]
    return found


def firing_rules(alerting: AlertingProfile) -> set[int]:
    alerts = alerting.api.get("/api/v1/alerts/states?state=firing")["alerts"]
    return {int(a["rule_id"]) for a in alerts}


def when(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_an_error_burst_through_ingestd_fires_the_rule_and_the_webhook_gets_one_notification(
    stack: ProductionStack, hook: Recorder
) -> None:
    alerting = start_alerting(stack)
    secret = secrets.token_urlsafe(24)
    channel = webhook_channel(alerting, hook.url + HOOK, secret)
    rule = error_rate_rule(alerting, "checkout failing", channel)
    stack.create_superuser()
    browser = alerting.web.admin()

    # a browser's live view, on the web process: the transition comes from the worker through Redis
    with connect(
        f"ws://127.0.0.1:{alerting.web.port}/ws/alerts/?tenant={alerting.tenant.name}",
        origin=Origin(alerting.web.url),
        additional_headers={"Cookie": f"sessionid={browser.cookies['sessionid']}"},
        open_timeout=10,
    ) as socket:
        live = LiveStates(socket)
        alerting.send_errors(20, SERVICE)
        change = live.next_change()
        live.close()
    assert (change["type"], change["rule_id"], change["from"], change["to"]) == (
        "alert.state",
        rule,
        "inactive",
        "firing",
    ), change

    first = wait_until(lambda: notifications_with(hook, "firing"), 30, "a firing notification")[0]
    fired = wait_until(lambda: alerting.api.get(f"/api/v1/alerts/states?rule={rule}")["alerts"], 10, "state")
    assert fired[0]["state"] == "firing", fired
    # later evaluations (beat, every second) still see the errors: they must not notify again
    firing_since = when(fired[0]["firing_since"])
    wait_until(
        lambda: (
            when(alerting.api.get(f"/api/v1/alerts/states?rule={rule}")["alerts"][0]["evaluated_at"])
            > firing_since + 3
        ),
        30,
        "three more seconds of evaluations of the firing rule",
    )
    assert len(notifications_with(hook, "firing")) == 1, [r.json for r in hook.requests]

    assert first.method == "POST"
    assert first.path == HOOK
    body = first.json
    assert body["tenant"] == alerting.tenant.name
    assert [a["rule"] for a in body["alerts"]] == ["checkout failing"]
    assert body["alerts"][0]["value"] == pytest.approx(1.0)
    timestamp = first.headers["x-ollystack-timestamp"]
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + first.body, hashlib.sha256).hexdigest()
    assert first.headers["x-ollystack-signature"] == f"sha256={expected}"

    transitions = events(alerting, rule=rule)
    assert [(e["from_state"], e["to_state"]) for e in transitions] == [("inactive", "firing")], transitions
    notes = alerting.api.get(f"/api/v1/alerts/notifications?rule={rule}")["notifications"]
    assert [(n["status"], n["firing"], n["attempts"]) for n in notes] == [("delivered", True, 1)], notes


def in_flight_at_kill(worker: CeleryWorker, run: int) -> list[str]:
    """Tasks the worker had received but not finished when run ``run`` of it was killed."""
    log = worker.logs[run].read_text(errors="replace")
    received = re.findall(r"Task (alerts\.\w+)\[([0-9a-f-]+)\] received", log)
    finished = set(re.findall(r"Task alerts\.\w+\[([0-9a-f-]+)\] (?:succeeded|failed|raised)", log))
    return [name for name, task in received if task not in finished]


def test_a_worker_killed_while_it_evaluates_loses_no_transition_and_notifies_no_alert_twice(
    stack: ProductionStack, hook: Recorder
) -> None:
    rules = 120
    alerting = start_alerting(stack)
    channel = webhook_channel(alerting, hook.url + HOOK)
    ids = {
        error_rate_rule(alerting, f"checkout failing {n:03}", channel, window_seconds=600)
        for n in range(rules)
    }
    worker = alerting.workers[0]

    alerting.send_errors(40, SERVICE)  # every rule's condition holds from now on, for the whole test
    interrupted: list[str] = []
    for _kill in range(3):
        time.sleep(random.uniform(0.0, 1.0))  # ingest triggered an evaluation; beat sends one a second
        worker.kill()
        interrupted += in_flight_at_kill(worker, len(worker.logs) - 1)
        worker.start()

    wait_until(lambda: firing_rules(alerting) >= ids, 90, f"all {rules} rules firing")
    delivered = wait_until(
        lambda: len({r.json["group_key"] for r in notifications_with(hook, "firing")}) >= rules,
        90,
        f"firing notifications of all {rules} rules at the webhook",
    )
    assert delivered
    assert "alerts.evaluate" in interrupted, f"no kill landed inside an evaluation: {interrupted}"

    fired = defaultdict(list)
    for event in events(alerting, to_state="firing"):
        fired[int(event["rule_id"])].append(event)
    assert set(fired) == ids
    assert {rule: len(found) for rule, found in fired.items() if len(found) != 1} == {}

    # A delivery interrupted after the target answered is sent again with the same delivery id (the
    # receiver's idempotency key): that is one notification, twice delivered. Two ids are two notifications.
    deliveries: dict[str, set[str]] = defaultdict(set)
    for request in notifications_with(hook, "firing"):
        deliveries[request.json["group_key"]].add(request.headers["x-ollystack-delivery"])
    assert len(deliveries) == rules
    assert {group: ids for group, ids in deliveries.items() if len(ids) != 1} == {}
    if "alerts.deliver" not in interrupted:
        # no kill landed inside a delivery: every alert reached the webhook exactly once
        sent = Counter(request.json["group_key"] for request in notifications_with(hook, "firing"))
        assert {group: count for group, count in sent.items() if count != 1} == {}

    def statuses() -> list[str]:
        notes = alerting.api.get("/api/v1/alerts/notifications?limit=1000")["notifications"]
        return sorted(n["status"] for n in notes if n["firing"])

    # one whose sending was interrupted is sent again once its lease expires
    wait_until(lambda: statuses() == ["delivered"] * rules, 60, "every firing notification delivered")
    for request in notifications_with(hook, "firing"):
        deliveries[request.json["group_key"]].add(request.headers["x-ollystack-delivery"])
    assert {group: ids for group, ids in deliveries.items() if len(ids) != 1} == {}


def test_a_target_that_is_down_is_retried_with_backoff_then_failed_and_shown_as_failed(
    stack: ProductionStack,
) -> None:
    base, attempts = 1, 4
    stack.extra_env.update(
        OLLYSTACK_ALERT_RETRY_BASE_SECONDS=str(base), OLLYSTACK_ALERT_DELIVERY_TIMEOUT_SECONDS="2"
    )
    alerting = start_alerting(stack)
    channel = webhook_channel(alerting, refused_url(HOOK), max_attempts=attempts)
    rule = error_rate_rule(alerting, "checkout failing", channel)

    alerting.send_errors(20, SERVICE)

    failed = wait_until(
        lambda: alerting.api.get("/api/v1/alerts/notifications?status=failed")["notifications"],
        60,
        "a FAILED notification in the delivery log",
    )
    assert len(failed) == 1, failed
    note = failed[0]
    assert (note["rule_id"], note["channel_id"], note["firing"]) == (rule, channel, True)
    assert note["attempts"] == attempts
    assert note["last_error"], note
    tries = note["delivery_attempts"]
    assert len(tries) == attempts, tries
    assert not any(t["ok"] for t in tries), tries
    assert all(t["status_code"] is None and t["error"] for t in tries), tries
    times = [when(t["at"]) for t in tries]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    for n, gap in enumerate(gaps, start=1):
        assert gap >= base * 2 ** (n - 1) - 0.25, f"retry {n} came {gap:.2f} s after the previous: {times}"
    others = alerting.api.get("/api/v1/alerts/notifications?status=delivered")["notifications"]
    assert others == []
