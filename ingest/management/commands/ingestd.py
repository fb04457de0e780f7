"""``python manage.py ingestd``: the OTLP receivers, the WAL pipeline and self-metrics, without the web app.

The production profile runs it next to the web processes (ClickHouse server, PostgreSQL for keys); the
schemas are expected to be migrated already (``migrate``, ``migrate_clickhouse``).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ingest.runtime import run_process


class Command(BaseCommand):
    help = "Receive OTLP over gRPC and HTTP and write it to ClickHouse (no web UI)."

    def handle(self, *args: Any, **options: Any) -> None:
        run_process(self.stderr, web_app=None)
