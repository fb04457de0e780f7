"""ASGI entry point for the web UI and API (uvicorn/daphne in production, `serve` in embedded mode)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ollystack.settings.embedded")

application = get_asgi_application()
