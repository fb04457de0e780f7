from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tenants import logic
from tenants.models import ApiKey, IngestKey

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> str:
    out = StringIO()
    call_command("tenant", *args, stdout=out)
    return out.getvalue()


def test_create_json_is_one_object_and_the_keys_work():
    data = json.loads(run("create", "acme", "--json"))
    assert set(data) == {"tenant_id", "name", "ingest_key", "api_key"}
    assert data["name"] == "acme"
    principal = logic.check_api_key(data["api_key"])
    assert principal.tenant_id == data["tenant_id"]
    assert principal.scopes == ("read",)
    assert logic.load_ingest_keys()[logic.hash_key(data["ingest_key"])].tenant_id == data["tenant_id"]


def test_create_human_output_and_duplicate_error():
    out = run("create", "acme")
    assert "Created tenant acme" in out
    assert "olly_ing_" in out
    assert "olly_api_" in out
    with pytest.raises(CommandError, match="tenant acme already exists"):
        run("create", "acme")


def test_list():
    assert "No tenants yet" in run("list")
    run("create", "beta")
    run("create", "alpha")
    rows = json.loads(run("list", "--json"))
    assert [r["name"] for r in rows] == ["alpha", "beta"]
    assert rows[0]["active_ingest_keys"] == 1
    assert rows[0]["active_api_keys"] == 1
    text = run("list")
    assert text.index("alpha") < text.index("beta")


def test_create_key_and_revoke_key():
    run("create", "acme")
    issued = json.loads(run("create-key", "acme", "--kind", "api", "--scopes", "read,write", "--json"))
    assert issued["scopes"] == ["read", "write"]
    assert issued["key"].startswith("olly_api_")
    assert logic.check_api_key(issued["key"]).allows("write")

    ingest_out = run("create-key", "acme", "--kind", "ingest", "--name", "edge")
    assert "olly_ing_" in ingest_out
    assert IngestKey.objects.filter(name="edge").exists()

    out = run("revoke-key", issued["prefix"])
    assert f"Revoked API key {issued['prefix']}… of tenant acme" in out
    assert ApiKey.objects.get(pk=issued["key_id"]).revoked_at is not None
    with pytest.raises(logic.KeyRejected, match="was revoked on"):
        logic.check_api_key(issued["key"])
    with pytest.raises(CommandError, match="already revoked"):
        run("revoke-key", issued["prefix"])
    with pytest.raises(CommandError, match="unknown scope"):
        run("create-key", "acme", "--kind", "api", "--scopes", "read,all")
    with pytest.raises(CommandError, match="no tenant named 'nope'"):
        run("create-key", "nope", "--kind", "ingest")


def test_command_line_json_output_is_exactly_one_object(tmp_path):
    """As a user runs it: a fresh var dir, migrations, then `tenant create --json` on stdout alone."""
    env = {"OLLYSTACK_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "ollystack.settings.test"}
    import os

    env = {**os.environ, **env}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=REPO, env=env, check=True
    )
    done = subprocess.run(
        [sys.executable, "manage.py", "tenant", "create", "acme", "--json"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    data = json.loads(done.stdout)
    assert data["name"] == "acme"
    assert data["api_key"].startswith("olly_api_")
