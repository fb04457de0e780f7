"""Apply pending ClickHouse schema migrations."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ollystack.clickhouse import EngineLockedError, get_backend
from ollystack.clickhouse.migrate import apply_migrations


class Command(BaseCommand):
    help = "Apply pending ClickHouse schema migrations (safe to re-run)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            applied = apply_migrations(get_backend(), log=self.stdout.write)
        except EngineLockedError as exc:
            raise CommandError(str(exc)) from None
        if not applied:
            self.stdout.write("ClickHouse schema is up to date")
