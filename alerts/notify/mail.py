"""Email: a text and an HTML part to the channel's recipients through Django's email backend."""

from __future__ import annotations

import re
import smtplib
import time

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils.html import escape

from alerts.models import Channel
from alerts.notify.base import ConfigurationError, SendResult
from alerts.notify.message import Message


def recipients(channel: Channel) -> list[str]:
    return [address for address in re.split(r"[\s,;]+", channel.recipients or "") if address]


def build(message: Message, channel: Channel) -> EmailMultiAlternatives:
    to = recipients(channel)
    if not to:
        raise ConfigurationError(f"email channel {channel.name} has no recipients")
    subject = f"{message.title} ({message.tenant})"
    text_lines = [subject, ""]
    html_rows = []
    for alert in message.alerts:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
        text_lines += [
            f"- {alert.annotations['summary']}",
            f"  status: {alert.status}, severity: {alert.severity}, since {alert.starts_at}"
            + (f", resolved {alert.ends_at}" if alert.ends_at else ""),
            f"  labels: {labels}",
            f"  {alert.generator_url}",
        ]
        if alert.annotations.get("description"):
            text_lines.append(f"  {alert.annotations['description']}")
        html_rows.append(
            "<tr>"
            f"<td>{escape(alert.status)}</td><td>{escape(alert.severity)}</td>"
            f'<td><a href="{escape(alert.generator_url)}">{escape(alert.rule)}</a></td>'
            f"<td>{escape(alert.annotations['summary'])}</td><td>{escape(labels)}</td>"
            f"<td>{escape(alert.starts_at)}</td><td>{escape(alert.ends_at or '')}</td>"
            "</tr>"
        )
    html = (
        f"<h2>{escape(message.title)}</h2><p>Tenant <b>{escape(message.tenant)}</b>, "
        f"channel {escape(message.channel)}</p><table border='1' cellpadding='4'>"
        "<tr><th>Status</th><th>Severity</th><th>Rule</th><th>Summary</th><th>Labels</th><th>Since</th>"
        "<th>Resolved</th></tr>" + "".join(html_rows) + "</table>"
    )
    mail = EmailMultiAlternatives(
        subject=subject, body="\n".join(text_lines) + "\n", from_email=settings.DEFAULT_FROM_EMAIL, to=to
    )
    mail.attach_alternative(html, "text/html")
    return mail


def send(message: Message, channel: Channel) -> SendResult:
    started = time.perf_counter()
    mail = build(message, channel)
    try:
        sent = mail.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as error:
        refused = ", ".join(sorted(error.recipients))
        return SendResult(False, None, f"the mail server refused {refused}", _ms(started), permanent=True)
    except (smtplib.SMTPException, OSError) as error:
        return SendResult(False, None, f"cannot send email: {error}", _ms(started))
    if not sent:
        return SendResult(False, None, "the email backend sent nothing", _ms(started))
    return SendResult(True, None, "", _ms(started))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
