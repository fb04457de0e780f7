"""Scale-out profile: PostgreSQL, Redis, ClickHouse server; web, ingestd and Celery as separate processes."""

from ollystack.settings.base import *  # noqa: F403
from ollystack.settings.env import env_bool, env_int, env_required, env_str

DEBUG = False
SECRET_KEY = env_required("OLLYSTACK_SECRET_KEY")

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": env_str("OLLYSTACK_POSTGRES_DB", "ollystack"),
        "USER": env_str("OLLYSTACK_POSTGRES_USER", "postgres"),
        "PASSWORD": env_str("OLLYSTACK_POSTGRES_PASSWORD", ""),
        "HOST": env_str("OLLYSTACK_POSTGRES_HOST", "127.0.0.1"),
        "PORT": env_int("OLLYSTACK_POSTGRES_PORT", 5432),
        "CONN_MAX_AGE": 60,
    }
}
REDIS_URL = env_str("OLLYSTACK_REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL},
    # read query results, shared by every web replica (ollystack/telemetry/cache.py)
    "query": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "ollystack-query",
        # a slow or absent Redis must not hold reads up: they run uncached instead
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    },
}

SECURE_SSL_REDIRECT = env_bool("OLLYSTACK_SECURE_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env_int("OLLYSTACK_HSTS_SECONDS", 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True

# The GraphQL schema is documented; a production server does not describe itself to anyone who asks.
OLLYSTACK_GRAPHQL_INTROSPECTION = env_bool("OLLYSTACK_GRAPHQL_INTROSPECTION", False)
# Web processes have no self-metrics listener of their own: /metrics on the web port (query cache counters).
OLLYSTACK_WEB_METRICS = env_bool("OLLYSTACK_WEB_METRICS", True)

# Quota counters shared by every ingestd replica (REDIS_URL).
OLLYSTACK_QUOTA_STORE = env_str("OLLYSTACK_QUOTA_STORE", "redis")

# Celery broker and the Channels layer shared by every worker and web process.
CELERY_BROKER_URL = env_str("OLLYSTACK_CELERY_BROKER_URL", REDIS_URL)
CHANNEL_LAYERS = {
    "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
}
