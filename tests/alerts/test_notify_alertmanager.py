"""The Alertmanager notifier against a real Alertmanager (the Debian package's binary)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.utils import timezone

from alerts.models import ChannelKind, NotificationStatus, State
from alerts.notify import alertmanager, outbox
from alerts.notify.dispatch import deliver_due, send_test
from alerts.notify.message import Message
from tests.alerts.notify_factories import make_channel, make_rule, make_tenant, transition
from tests.alerts.recorder import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

BINARY = "/usr/bin/prometheus-alertmanager"
CONFIG = """\
route:
  receiver: blackhole
  group_wait: 1h
receivers:
  - name: blackhole
"""


@pytest.fixture(scope="module")
def alertmanager_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which(BINARY) or shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.fail(f"Alertmanager is not installed: apt-get install prometheus-alertmanager ({BINARY})")
    workdir: Path = tmp_path_factory.mktemp("alertmanager")
    (workdir / "alertmanager.yml").write_text(CONFIG)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (workdir / "alertmanager.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'alertmanager.yml'}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"Alertmanager exited with {process.returncode}: "
                    f"{(workdir / 'alertmanager.log').read_text()}"
                )
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"Alertmanager not ready within 30 s: {(workdir / 'alertmanager.log').read_text()}"
                )
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _alerts(url: str, **filters: str) -> list[dict[str, Any]]:
    params: list[tuple[str, str | int | float | bool | None]] = [
        ("filter", f'{name}="{value}"') for name, value in filters.items()
    ]
    response = httpx.get(f"{url}/api/v2/alerts", params=params, timeout=5)
    response.raise_for_status()
    return list(response.json())


def test_firing_then_resolved_alert_reaches_alertmanager(alertmanager_url: str) -> None:
    tenant = make_tenant()
    channel = make_channel(tenant, ChannelKind.ALERTMANAGER, alertmanager_url)
    rule = make_rule(
        tenant, channel, labels={"team": "payments", "on-call": "yes"}, description="Checkout fails."
    )
    now = timezone.now()
    outbox.enqueue([transition(rule, State.FIRING, at=now, series="s1", labels={"region": "eu"})], now=now)
    report = deliver_due(now)
    assert report.delivered == 1, report

    [alert] = _alerts(alertmanager_url, tenant=tenant.name)
    assert alert["labels"] == {
        "alertname": "checkout errors",
        "severity": "critical",
        "tenant": tenant.name,
        "service": "checkout",
        "team": "payments",
        "on_call": "yes",  # made a valid label name
        "region": "eu",
    }
    assert alert["status"]["state"] == "active"
    assert alert["annotations"]["description"] == "Checkout fails."
    assert alert["annotations"]["value"] == "0.25"
    assert "checkout error rate is 0.25" in alert["annotations"]["summary"]
    assert alert["generatorURL"].endswith(f"/api/v1/alerts/rules/{rule.pk}?tenant={tenant.name}")
    # Active until our next reminder is due (plus a margin), not Alertmanager's 5 minute resolve timeout.
    ends = datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00"))
    assert ends - now >= timedelta(seconds=channel.repeat_interval_seconds)

    resolved_at = timezone.now()
    outbox.enqueue(
        [transition(rule, State.RESOLVED, at=resolved_at, series="s1", labels={"region": "eu"})],
        now=resolved_at,
    )
    assert deliver_due(resolved_at).delivered == 1
    # Alertmanager's API lists resolved alerts only until garbage collection; either it is gone
    # from the active ones, or it is listed with the end time we sent.
    still = _alerts(alertmanager_url, tenant=tenant.name)
    active = [a for a in still if a["status"]["state"] == "active"]
    assert active == [], still
    for alert in still:
        ends = datetime.fromisoformat(alert["endsAt"].replace("Z", "+00:00"))
        assert abs((ends - resolved_at).total_seconds()) < 1


def test_channel_test_message_reaches_alertmanager(alertmanager_url: str) -> None:
    tenant = make_tenant()
    channel = make_channel(tenant, ChannelKind.ALERTMANAGER, alertmanager_url)
    response = httpx.post(f"{alertmanager_url}/api/v2/alerts", json=[{"labels": {}}], timeout=5)
    assert response.status_code == 400  # what Alertmanager does with an alert without labels
    result = send_test(channel)
    assert result.ok, result.error
    assert (
        _alerts(alertmanager_url, tenant=tenant.name)[0]["labels"]["alertname"]
        == "OllyStack test notification"
    )


def test_payload_shape_matches_alertmanager_openapi() -> None:
    """Alertmanager v2 postableAlert (api/v2/openapi.yaml): labels (required, a string map), annotations,
    startsAt, endsAt, generatorURL; nothing else."""
    tenant = make_tenant()
    channel = make_channel(tenant, ChannelKind.ALERTMANAGER, "http://am.example:9093/")
    rule = make_rule(tenant, channel)
    [notification] = outbox.enqueue([transition(rule, State.FIRING)])
    [alert] = alertmanager.build(Message.from_json(notification.payload), channel)
    assert set(alert) == {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}
    assert all(isinstance(v, str) for v in alert["labels"].values())
    assert alertmanager.url_for(channel) == "http://am.example:9093/api/v2/alerts"
    assert notification.status == NotificationStatus.PENDING
