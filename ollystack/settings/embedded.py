"""Default profile: one process, chdb + SQLite under var/, everything in-process."""

from ollystack.settings.base import *  # noqa: F403
from ollystack.settings.base import VAR_DIR
from ollystack.settings.env import env_str, persistent_secret_key

SECRET_KEY = env_str("OLLYSTACK_SECRET_KEY") or persistent_secret_key(VAR_DIR / "secret_key")

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "ollystack.sqlite3",
        "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"},
    }
}
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # read query results (ollystack/telemetry/cache.py)
    "query": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "ollystack-query",
        "OPTIONS": {"MAX_ENTRIES": 2000},
    },
}
