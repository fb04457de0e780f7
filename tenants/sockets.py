"""The base of every live WebSocket: a member's browser session, for one tenant, allowed to read it.

``MemberSocket.member(what)`` resolves the tenant named by ``?tenant=`` (or the user's only one) from the
session of the handshake and returns the access; anyone else gets one ``{"type": "error", "error": ...}``
message saying what to do, then the socket closes with 4401 (not signed in) or 4403 (no access). Consumers
use ``refuse`` for their own refusals (4400 malformed, 4404 not found).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from tenants.logic import Permission, TenantAccess, TenantAccessDenied, TenantAmbiguous, access_for_user

CLOSE_MALFORMED = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404


class MemberSocket(AsyncJsonWebsocketConsumer):
    def query_param(self, name: str) -> str | None:
        """One query-string parameter of the handshake, stripped; None when absent or empty."""
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        return (query.get(name) or [""])[0].strip() or None

    async def member(self, what: str) -> TenantAccess | None:
        """The caller's access to the tenant, or None after refusing them; ``what`` names the stream
        in the refusals, as a plural ("live alert states", "live log records")."""
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(
                CLOSE_UNAUTHENTICATED, f"sign in first: {what} need the browser session of a member"
            )
            return None
        try:
            access: TenantAccess = await database_sync_to_async(access_for_user)(
                user, self.query_param("tenant")
            )
        except (TenantAccessDenied, TenantAmbiguous) as exc:
            await self.refuse(CLOSE_FORBIDDEN, str(exc))
            return None
        if not access.allows(Permission.READ):
            await self.refuse(CLOSE_FORBIDDEN, f"your role cannot read {what} of tenant {access.tenant_name}")
            return None
        return access

    async def refuse(self, code: int, error: str) -> None:
        await self.accept()
        await self.send_json({"type": "error", "error": error})
        await self.close(code=code)
