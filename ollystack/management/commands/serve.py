"""``python manage.py serve``: the whole embedded OllyStack in one process.

Applies the Django and ClickHouse migrations, creates the default tenant and its credentials on first
start, collects the static files (WhiteNoise serves them from ``STATIC_ROOT``), then runs the web app, the
OTLP receivers, the pipeline and the self-metrics in one asyncio loop until SIGINT/SIGTERM. Without a
broker (``memory://``, the embedded default) it also evaluates alert rules and delivers notifications in
two threads of its own (``alerts.runtime.InProcessScheduler``); with one, Celery workers do.
"""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from ingest.runtime import run_process


class Command(BaseCommand):
    help = "Run OllyStack (web UI, API, OTLP receivers, ClickHouse engine) in one process."

    def handle(self, *args: Any, **options: Any) -> None:
        from ollystack.clickhouse import EngineLockedError, get_backend
        from ollystack.clickhouse.migrate import apply_migrations
        from tenants.logic import ensure_default_tenant

        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        try:
            backend = get_backend()
            applied = apply_migrations(backend, log=lambda line: None)
        except EngineLockedError as exc:
            self.stderr.write(str(exc))
            sys.exit(1)
        if applied:
            self.stdout.write(f"ClickHouse migrations applied: {', '.join(applied)}")
        result = ensure_default_tenant(settings.VAR_DIR)
        if result.created:
            self.stdout.write(credentials_box(result.credentials))
        elif result.path is not None:
            self.stdout.write(
                f"Credentials from the first start are in {result.path} (readable by you only)."
            )

        from alerts.runtime import InProcessScheduler, in_process
        from ollystack.asgi import application

        scheduler = InProcessScheduler() if in_process() else None
        run_process(self.stderr, web_app=application, backend=backend, scheduler=scheduler)


def _host() -> str:
    bind: str = settings.OLLYSTACK_BIND
    return "127.0.0.1" if bind in ("0.0.0.0", "::", "") else bind  # noqa: S104


def credentials_box(credentials: dict[str, str]) -> str:
    host = _host()
    ingest_key = credentials.get("ingest_key", "")
    lines = [
        "OllyStack is set up. These credentials are shown once; keep them somewhere safe.",
        "",
        f"  Web UI        http://{host}:{settings.OLLYSTACK_HTTP_PORT}/",
        f"  Admin         http://{host}:{settings.OLLYSTACK_HTTP_PORT}/admin/",
        f"  Admin user    {credentials.get('admin_username', '(existing user admin)')}",
        f"  Password      {credentials.get('admin_password', '(unchanged)')}",
        f"  Tenant        {credentials.get('tenant', 'default')}",
        f"  Ingest key    {ingest_key}",
        f"  API key       {credentials.get('api_key', '')}",
        "",
        "Send telemetry from any OpenTelemetry SDK or Collector:",
        f"  OTEL_EXPORTER_OTLP_ENDPOINT=http://{host}:{settings.OLLYSTACK_OTLP_HTTP_PORT}",
        "  OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
        f"  OTEL_EXPORTER_OTLP_HEADERS=Authorization={quote('Bearer ' + ingest_key)}",
        f"  (gRPC: OTEL_EXPORTER_OTLP_ENDPOINT=http://{host}:{settings.OLLYSTACK_OTLP_GRPC_PORT}"
        " and OTEL_EXPORTER_OTLP_PROTOCOL=grpc)",
    ]
    width = max(len(line) for line in lines) + 2
    top = "┌" + "─" * width + "┐"
    bottom = "└" + "─" * width + "┘"
    body = [f"│ {line.ljust(width - 2)} │" for line in lines]
    return "\n".join([top, *body, bottom])
