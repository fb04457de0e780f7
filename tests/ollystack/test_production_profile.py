"""The production profile, for real: PostgreSQL for Django, and `check --deploy` clean."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OLLYSTACK_")}
    env.update(
        DJANGO_SETTINGS_MODULE="ollystack.settings.production",
        OLLYSTACK_SECRET_KEY=secrets.token_urlsafe(50),
        **extra,
    )
    return env


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_check_deploy_is_clean() -> None:
    done = _manage("check", "--deploy", "--fail-level", "WARNING", env=_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_production_refuses_to_start_without_a_secret_key() -> None:
    env = _env()
    del env["OLLYSTACK_SECRET_KEY"]
    done = _manage("check", env=env)
    assert done.returncode != 0
    assert "OLLYSTACK_SECRET_KEY must be set" in done.stderr


@pytest.mark.postgres
def test_migrate_and_tenant_admin_on_postgres() -> None:
    import psycopg

    name = f"ollystack_t_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", autocommit=True)
    except psycopg.OperationalError as err:
        pytest.fail(
            f"PostgreSQL is not reachable on 127.0.0.1:5432 ({err}); start it with "
            "'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start'"
        )
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        env = _env(OLLYSTACK_POSTGRES_DB=name)
        done = _manage("migrate", "--noinput", env=env)
        assert done.returncode == 0, done.stderr
        created = _manage("tenant", "create", "pg-tenant", "--json", env=env)
        assert created.returncode == 0, created.stderr
        tenant = json.loads(created.stdout)
        assert tenant["ingest_key"].startswith("olly_ing_")
        listed = json.loads(_manage("tenant", "list", "--json", env=env).stdout)
        assert [t["name"] for t in listed] == ["pg-tenant"]
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
