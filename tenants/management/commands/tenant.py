"""``manage.py tenant``: create tenants, issue and revoke keys. Touches only the Django database."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants import logic


class Command(BaseCommand):
    help = "Manage tenants and their keys (create, list, create-key, revoke-key)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        create = sub.add_parser("create", help="Create a tenant with an ingest key and a read API key.")
        create.add_argument("name", help="lowercase letters, digits and hyphens, e.g. acme")
        create.add_argument("--display-name", default="", help="human-friendly name")
        create.add_argument("--json", action="store_true", help="print one JSON object")

        listing = sub.add_parser("list", help="List tenants.")
        listing.add_argument("--json", action="store_true", help="print a JSON array")

        revoke = sub.add_parser("revoke-key", help="Revoke an ingest or API key.")
        revoke.add_argument("key", metavar="PREFIX_OR_ID", help="olly_…prefix, full key, ingest:ID or api:ID")

        key = sub.add_parser("create-key", help="Issue another key for a tenant.")
        key.add_argument("tenant", help="tenant name or id")
        key.add_argument("--kind", choices=["ingest", "api"], required=True)
        key.add_argument("--name", default="", help="what the key is for")
        key.add_argument("--scopes", default="read", help="API keys: comma-separated read,write,admin")
        key.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        try:
            if action == "create":
                self.create(options)
            elif action == "list":
                self.list(options)
            elif action == "revoke-key":
                self.revoke(options)
            elif action == "create-key":
                self.create_key(options)
        except logic.TenantError as exc:
            raise CommandError(str(exc)) from None

    def create(self, options: dict[str, Any]) -> None:
        tenant = logic.create_tenant(options["name"], options["display_name"])
        ingest = logic.issue_ingest_key(tenant.tenant_id, "created with the tenant")
        api = logic.issue_api_key(tenant.tenant_id, "created with the tenant", ("read",))
        if options["json"]:
            data = {
                "tenant_id": tenant.tenant_id,
                "name": tenant.name,
                "ingest_key": ingest.raw,
                "api_key": api.raw,
            }
            self.stdout.write(json.dumps(data))
            return
        self.stdout.write(f"Created tenant {tenant.name} ({tenant.tenant_id}).")
        self.stdout.write("Keep these keys now; they are stored hashed and cannot be shown again.")
        self.stdout.write(f"  ingest key:         {ingest.raw}")
        self.stdout.write(f"  API key (read):     {api.raw}")

    def list(self, options: dict[str, Any]) -> None:
        tenants = logic.list_tenants()
        if options["json"]:
            rows = [{**asdict(t), "created_at": t.created_at.isoformat()} for t in tenants]
            self.stdout.write(json.dumps(rows))
            return
        if not tenants:
            self.stdout.write("No tenants yet; create one with `manage.py tenant create NAME`.")
            return
        width = max(len(t.name) for t in tenants)
        self.stdout.write(f"{'NAME':<{width}}  {'ID':<36}  ACTIVE  INGEST KEYS  API KEYS  MEMBERS")
        for t in tenants:
            self.stdout.write(
                f"{t.name:<{width}}  {t.tenant_id:<36}  {'yes' if t.is_active else 'no':<6}  "
                f"{t.active_ingest_keys:<11}  {t.active_api_keys:<8}  {t.members}"
            )

    def revoke(self, options: dict[str, Any]) -> None:
        revoked = logic.revoke_key(options["key"])
        label = "ingest" if revoked.kind == "ingest" else "API"
        self.stdout.write(
            f"Revoked {label} key {revoked.prefix}… of tenant {revoked.tenant_name} "
            f"(id {revoked.key_id}) at {revoked.revoked_at.isoformat()}."
        )

    def create_key(self, options: dict[str, Any]) -> None:
        if options["kind"] == "ingest":
            issued = logic.issue_ingest_key(options["tenant"], options["name"])
        else:
            scopes = options["scopes"].split(",")
            issued = logic.issue_api_key(options["tenant"], options["name"], scopes)
        if options["json"]:
            data = {
                "tenant_id": issued.tenant_id,
                "name": issued.tenant_name,
                "kind": issued.kind,
                "key_id": issued.key_id,
                "prefix": issued.prefix,
                "scopes": list(issued.scopes),
                "key": issued.raw,
            }
            self.stdout.write(json.dumps(data))
            return
        label = "ingest key" if issued.kind == "ingest" else f"API key ({','.join(issued.scopes)})"
        self.stdout.write(f"New {label} for tenant {issued.tenant_name}; it will not be shown again:")
        self.stdout.write(f"  {issued.raw}")
