"""Celery tasks of the alerts app: evaluate rules, deliver due notifications.

Celery beat sends both every tick (``CELERY_BEAT_SCHEDULE``); ingest sends ``alerts.evaluate`` for the
tenants whose data it just stored, and an evaluation that recorded transitions sends ``alerts.deliver``
(``alerts.runtime``). The embedded ``serve`` process calls the same functions in-process. Both tasks are
safe to run concurrently and to run again (row locks, stale-observation check, delivery leases).
"""

from __future__ import annotations

import logging

from alerts.evaluation import evaluate as evaluate_rules
from alerts.notify.dispatch import deliver_due
from ollystack.celery import app

log = logging.getLogger(__name__)

# A run that claimed a full batch goes on with the next one, up to this many: a backlog (a target that was
# down comes back) drains without waiting a tick per batch, and one run still ends.
DELIVERY_BATCH = 100
DELIVERY_ROUNDS = 20


@app.task(name="alerts.evaluate", ignore_result=True)
def evaluate(tenant_ids: list[str] | None = None) -> None:
    """Evaluate the enabled rules of these tenants (None: of every tenant)."""
    report = evaluate_rules(tenant_ids)
    log.debug(
        "alerts evaluated tenants=%s rules=%d queries=%d events=%d failed=%d seconds=%.3f",
        "all" if tenant_ids is None else ",".join(tenant_ids),
        report.rules,
        report.queries,
        report.events,
        report.failed,
        report.seconds,
    )


@app.task(name="alerts.deliver", ignore_result=True)
def deliver() -> None:
    """Send the notifications that are due (claimed with leases, so several workers may run it)."""
    for _ in range(DELIVERY_ROUNDS):
        if deliver_due(limit=DELIVERY_BATCH).claimed < DELIVERY_BATCH:
            return
