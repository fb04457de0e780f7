"""Alert notifications: the outbox, the dispatcher and one notifier per channel kind.

``outbox.enqueue`` queues notifications in the evaluation's transaction; ``dispatch.deliver_due`` sends
them (silences, mute windows, retries, the delivery log); ``send_test`` sends a test message to a channel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alerts.models import Channel
    from alerts.notify.base import SendResult


def send_test(channel: Channel) -> SendResult:
    """Send a test notification to ``channel`` now (nothing is stored); see ``dispatch.send_test``."""
    from alerts.notify.dispatch import send_test as _send_test

    return _send_test(channel)
