"""Several dispatcher processes on one PostgreSQL database deliver every notification exactly once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.alerts.recorder import Recorder, Reply
from tests.e2e.production import in_parallel, production_stack

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

NOTIFICATIONS = 40

SETUP = """
from alerts.models import *
from alerts.notify import outbox
from tenants.models import Tenant
tenant = Tenant.objects.create(name="dispatch")
channel = Channel.objects.create(
    tenant=tenant, name="hook", kind="webhook", url={url!r}, group_by=["instance"]
)
rule = Rule.objects.create(tenant=tenant, name="errors", service="checkout", red_figure="error_rate")
rule.channels.set([channel])
events = [
    AlertEvent.objects.create(tenant=tenant, rule=rule, series=str(i), labels={{"instance": str(i)}},
                              from_state="pending", to_state="firing", value=1.0)
    for i in range({count})
]
print(len(outbox.enqueue(events)))
"""

DISPATCH = """
from alerts.notify.dispatch import deliver_due
sent = 0
while True:
    report = deliver_due(limit=3)
    sent += report.delivered
    if report.claimed == 0:
        break
print(sent)
"""

SUMMARY = """
import json
from alerts.models import Notification, DeliveryAttempt
print(json.dumps({
    "statuses": sorted(set(Notification.objects.values_list("status", flat=True))),
    "attempts": sorted(set(Notification.objects.values_list("attempts", flat=True))),
    "rows": DeliveryAttempt.objects.count(),
}))
"""


def test_concurrent_dispatchers_send_each_notification_once(tmp_path: Path) -> None:
    with Recorder() as target, production_stack(tmp_path, redis=False) as stack:
        target.default = Reply(200, delay_seconds=0.05)  # keeps the dispatchers overlapping
        queued = stack.manage(
            "shell", "--no-imports", "-c", SETUP.format(url=target.url, count=NOTIFICATIONS)
        )
        assert queued.strip().splitlines()[-1] == str(NOTIFICATIONS)

        def dispatcher() -> int:
            return int(stack.manage("shell", "--no-imports", "-c", DISPATCH).strip().splitlines()[-1])

        sent = in_parallel(dispatcher, dispatcher, dispatcher)
        print("delivered per dispatcher", sent)
        assert sum(sent) == NOTIFICATIONS

        deliveries = Counter(r.headers["x-ollystack-delivery"] for r in target.requests)
        assert len(deliveries) == NOTIFICATIONS
        assert set(deliveries.values()) == {1}, [d for d, n in deliveries.items() if n > 1]
        summary = json.loads(stack.manage("shell", "--no-imports", "-c", SUMMARY).strip().splitlines()[-1])
        assert summary == {"statuses": ["delivered"], "attempts": [1], "rows": NOTIFICATIONS}
