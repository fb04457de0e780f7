"""Celery application: workers and beat in production; the same tasks run in-process when embedded."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ollystack.settings.production")

app = Celery("ollystack")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
