"""ASGI entry point: the web UI and API over HTTP, live views over WebSockets.

uvicorn/daphne run it in production; ``serve`` hosts it in embedded mode. WebSockets authenticate with
the browser session and must come from an allowed host (``OLLYSTACK_ALLOWED_HOSTS``).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ollystack.settings.embedded")

django_application = get_asgi_application()  # sets Django up before the consumers import models

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from alerts.routing import websocket_urlpatterns as alert_routes  # noqa: E402
from ollystack.telemetry.routing import websocket_urlpatterns as telemetry_routes  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter([*alert_routes, *telemetry_routes]))
        ),
    }
)
