"""Settings shared by every profile. Profiles: embedded (default), production, test."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from ollystack.settings.env import env_bool, env_int, env_list, env_str, var_dir

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = var_dir()

DEBUG = env_bool("OLLYSTACK_DEBUG", False)
ALLOWED_HOSTS = env_list("OLLYSTACK_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "graphene_django",
    "allauth",
    "allauth.account",
    "ollystack",
    "ollystack.telemetry",
    "tenants",
    "ingest",
    "alerts",
    "ai",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "ollystack.urls"
ASGI_APPLICATION = "ollystack.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Browser sign-in: django-allauth with username + password (accounts are created by admins: no sign-up).
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
ACCOUNT_ADAPTER = "ollystack.ui.accounts.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = None  # the "remember me" box decides
# Sign-ins per client address (allauth's format: count/period/per); failed attempts keep allauth's limits.
ACCOUNT_RATE_LIMITS = {"login": env_str("OLLYSTACK_LOGIN_RATE", "30/m/ip")}
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "ui-services"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# The UI's own files, and the browser libraries installed from npm (package.json, package-lock.json) served
# as they are published: ES modules loaded through the import map in templates/ui/base.html, no build step.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/uplot", BASE_DIR / "node_modules" / "uplot" / "dist"),
    ("vendor/cytoscape", BASE_DIR / "node_modules" / "cytoscape" / "dist"),
]
STATIC_ROOT = VAR_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    # Bearer: a tenant API key (olly_api_…) or a JWT from /api/v1/auth/token. Session: the browser (CSRF).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.auth.BearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Every view declares `required_permission`; a view that does not is refused (docs/api-auth.md).
    "DEFAULT_PERMISSION_CLASSES": ["tenants.permissions.TenantPermission"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "ollystack.telemetry.api.errors.exception_handler",
    # Password attempts at POST /api/v1/auth/token per client address.
    "DEFAULT_THROTTLE_RATES": {"auth-token": env_str("OLLYSTACK_AUTH_TOKEN_RATE", "30/min")},
    # Reverse proxies in front of the web server (their X-Forwarded-For is trusted for the client address).
    "NUM_PROXIES": env_int("OLLYSTACK_NUM_PROXIES", 0),
}
# JWTs for Django accounts, signed with SECRET_KEY (HS256). Access tokens are short-lived; a refresh returns
# a new pair (rotation) until the session reaches OLLYSTACK_JWT_MAX_SESSION_SECONDS after the sign-in.
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env_int("OLLYSTACK_JWT_ACCESS_SECONDS", 300)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env_int("OLLYSTACK_JWT_REFRESH_SECONDS", 86_400)),
    "ROTATE_REFRESH_TOKENS": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "AUTH_HEADER_TYPES": ("Bearer",),
    # Tokens carry a digest of the password hash: changing the password ends every session.
    "CHECK_REVOKE_TOKEN": True,
}
OLLYSTACK_JWT_MAX_SESSION_SECONDS = env_int("OLLYSTACK_JWT_MAX_SESSION_SECONDS", 7 * 86_400)
SPECTACULAR_SETTINGS = {
    "TITLE": "OllyStack API",
    "VERSION": "1",
    "DESCRIPTION": "Traces, logs and metrics stored in ClickHouse, read back per tenant.",
    # Choice sets used by several fields or components get one name each in the schema.
    "ENUM_NAME_OVERRIDES": {
        "AlertSeverityEnum": "alerts.models.Severity",
        "AlertStateEnum": "alerts.models.State",
        "ChannelKindEnum": "alerts.models.ChannelKind",
        "KeyKindEnum": "tenants.api.views.KINDS",
        "KeyStatusEnum": ["active", "expired", "revoked"],
        "LogSeverityClassEnum": "ollystack.telemetry.log_histogram.SEVERITIES",
        "NotificationStatusEnum": "alerts.models.NotificationStatus",
        "RuleKindEnum": "alerts.models.RuleKind",
        "SilenceStatusEnum": "alerts.api.serializers.SILENCE_STATUSES",
    },
}

# --- OllyStack -----------------------------------------------------------------------------------
# ClickHouse: empty URL means the embedded chdb engine under VAR_DIR/clickhouse.
OLLYSTACK_CLICKHOUSE_URL = env_str("OLLYSTACK_CLICKHOUSE_URL", "")
OLLYSTACK_CLICKHOUSE_PATH = VAR_DIR / "clickhouse"

OLLYSTACK_BIND = env_str("OLLYSTACK_BIND", "127.0.0.1")
OLLYSTACK_HTTP_PORT = env_int("OLLYSTACK_HTTP_PORT", 8080)
OLLYSTACK_OTLP_GRPC_PORT = env_int("OLLYSTACK_OTLP_GRPC_PORT", 4317)
OLLYSTACK_OTLP_HTTP_PORT = env_int("OLLYSTACK_OTLP_HTTP_PORT", 4318)
OLLYSTACK_METRICS_PORT = env_int("OLLYSTACK_METRICS_PORT", 8888)

# Ingest: largest accepted request (after decompression), batch size and delay, WAL location.
OLLYSTACK_MAX_REQUEST_BYTES = env_int("OLLYSTACK_MAX_REQUEST_BYTES", 16 * 1024 * 1024)
OLLYSTACK_BATCH_MAX_ROWS = env_int("OLLYSTACK_BATCH_MAX_ROWS", 10_000)
OLLYSTACK_BATCH_MAX_DELAY_MS = env_int("OLLYSTACK_BATCH_MAX_DELAY_MS", 200)
OLLYSTACK_BATCH_MAX_BYTES = env_int("OLLYSTACK_BATCH_MAX_BYTES", 16 << 20)
# OTLP requests in progress per receiver (gRPC, HTTP); more are refused with a retryable status. With the
# request size limit this bounds the bytes ingest holds in memory.
OLLYSTACK_MAX_CONCURRENT_REQUESTS = env_int("OLLYSTACK_MAX_CONCURRENT_REQUESTS", 64)
OLLYSTACK_WAL_DIR = Path(env_str("OLLYSTACK_WAL_DIR", str(VAR_DIR / "wal")))
# Bytes of acknowledged data waiting for ClickHouse before ingest answers UNAVAILABLE / 503.
OLLYSTACK_WAL_MAX_BYTES = env_int("OLLYSTACK_WAL_MAX_BYTES", 1 << 30)
# How often the ingest path reloads tenants and keys from the Django database.
OLLYSTACK_KEY_REFRESH_SECONDS = env_int("OLLYSTACK_KEY_REFRESH_SECONDS", 5)
# Where per-tenant quota counters live: "local" (in-process, one server) or "redis" (shared by replicas).
OLLYSTACK_QUOTA_STORE = env_str("OLLYSTACK_QUOTA_STORE", "local")
# ClickHouse layout (docs/storage.md). A cluster name from the server's remote_servers makes migrations create
# Replicated tables ON CLUSTER behind Distributed ones; a storage policy with 'warm'/'cold' volumes
# (deploy/clickhouse/storage.xml) lets TTL move rows there after the given ages (0 = never).
OLLYSTACK_CLICKHOUSE_CLUSTER = env_str("OLLYSTACK_CLICKHOUSE_CLUSTER", "")
OLLYSTACK_CLICKHOUSE_STORAGE_POLICY = env_str("OLLYSTACK_CLICKHOUSE_STORAGE_POLICY", "")
OLLYSTACK_CLICKHOUSE_WARM_AFTER_DAYS = env_int("OLLYSTACK_CLICKHOUSE_WARM_AFTER_DAYS", 3)
OLLYSTACK_CLICKHOUSE_COLD_AFTER_DAYS = env_int("OLLYSTACK_CLICKHOUSE_COLD_AFTER_DAYS", 14)

# Read query cache (ollystack/telemetry/cache.py, Django cache alias "query"): seconds an answer is reused,
# and for ranges that ended more than SETTLED_AFTER seconds ago (their data has settled), SETTLED seconds.
# 0 turns the cache off.
OLLYSTACK_QUERY_CACHE_SECONDS = env_int("OLLYSTACK_QUERY_CACHE_SECONDS", 5)
OLLYSTACK_QUERY_CACHE_SETTLED_AFTER_SECONDS = env_int("OLLYSTACK_QUERY_CACHE_SETTLED_AFTER_SECONDS", 300)
OLLYSTACK_QUERY_CACHE_SETTLED_SECONDS = env_int("OLLYSTACK_QUERY_CACHE_SETTLED_SECONDS", 60)
# Serve the self-metrics (query cache counters) at /metrics on the web port too; the embedded profile
# serves them on OLLYSTACK_METRICS_PORT already.
OLLYSTACK_WEB_METRICS = env_bool("OLLYSTACK_WEB_METRICS", False)

# GraphQL (/graphql/, ollystack/telemetry/api/graphql.py): introspection and the GraphiQL page (off in the
# production profile), and the limits every query is validated against (depth in fields; cost: each field 1,
# each top-level read 10 more).
GRAPHENE = {"SCHEMA": "ollystack.telemetry.api.graphql.schema"}
OLLYSTACK_GRAPHQL_INTROSPECTION = env_bool("OLLYSTACK_GRAPHQL_INTROSPECTION", True)
OLLYSTACK_GRAPHQL_MAX_DEPTH = env_int("OLLYSTACK_GRAPHQL_MAX_DEPTH", 8)
OLLYSTACK_GRAPHQL_MAX_COST = env_int("OLLYSTACK_GRAPHQL_MAX_COST", 250)

# --- Alerts (alerts/, docs/alerts.md) ----------------------------------------------------------------
# Rules are evaluated every OLLYSTACK_ALERT_EVALUATION_SECONDS by Celery beat + workers (production) or by
# the same task code in the `serve` process (embedded), and right after ingest stores new data of a tenant.
OLLYSTACK_ALERT_EVALUATION_SECONDS = env_int("OLLYSTACK_ALERT_EVALUATION_SECONDS", 1)
# Seconds a notifier waits for a target (Alertmanager, Slack, PagerDuty, webhook) before the attempt fails;
# failed attempts are retried with exponential backoff from RETRY_BASE up to RETRY_MAX seconds apart.
OLLYSTACK_ALERT_DELIVERY_TIMEOUT_SECONDS = env_int("OLLYSTACK_ALERT_DELIVERY_TIMEOUT_SECONDS", 5)
OLLYSTACK_ALERT_RETRY_BASE_SECONDS = env_int("OLLYSTACK_ALERT_RETRY_BASE_SECONDS", 2)
OLLYSTACK_ALERT_RETRY_MAX_SECONDS = env_int("OLLYSTACK_ALERT_RETRY_MAX_SECONDS", 300)
# The address users reach OllyStack at: links in notifications (Alertmanager generatorURL, Slack, PagerDuty).
OLLYSTACK_PUBLIC_URL = env_str("OLLYSTACK_PUBLIC_URL", "http://localhost:8080")

# Celery: the broker is Redis in production; the embedded profile runs the tasks in-process (no broker).
CELERY_BROKER_URL = env_str("OLLYSTACK_CELERY_BROKER_URL", "memory://")
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a task whose worker dies is delivered again
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A tick still queued when the next one is due is dropped (expires), so a slow or stopped worker does not
# come back to a backlog of evaluations of moments that have passed.
CELERY_BEAT_SCHEDULE = {
    "alerts-evaluate": {
        "task": "alerts.evaluate",
        "schedule": float(OLLYSTACK_ALERT_EVALUATION_SECONDS),
        "options": {"expires": float(OLLYSTACK_ALERT_EVALUATION_SECONDS)},
    },
    "alerts-deliver": {"task": "alerts.deliver", "schedule": 1.0, "options": {"expires": 1.0}},
}

# Channels (WebSockets: live alert states, live tail): in-process layer; Redis in production.
CHANNEL_LAYERS: dict[str, dict[str, object]] = {
    "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}
}

# Email notifications go through Django's email backend (SMTP unless configured otherwise).
EMAIL_BACKEND = env_str("OLLYSTACK_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env_str("OLLYSTACK_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("OLLYSTACK_EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("OLLYSTACK_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = env_str("OLLYSTACK_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = env_bool("OLLYSTACK_EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("OLLYSTACK_EMAIL_FROM", "OllyStack <ollystack@localhost>")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"kv": {"format": "ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "kv"}},
    "root": {"handlers": ["console"], "level": env_str("OLLYSTACK_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # httpx logs every request with its URL at INFO: statements' bound values and settings
        "httpx": {"level": "WARNING"},
    },
}
