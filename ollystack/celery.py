"""Celery application: workers and beat in production; the same tasks run in-process when embedded.

``celery -A ollystack worker`` runs the tasks (alerts.evaluate, alerts.deliver, ...); ``celery -A ollystack
beat`` sends them on the schedule of ``CELERY_BEAT_SCHEDULE`` and keeps its state in
``<OLLYSTACK_VAR_DIR>/celerybeat-schedule`` unless ``CELERY_BEAT_SCHEDULE_FILENAME`` says otherwise.
"""

import os
from pathlib import Path
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ollystack.settings.production")

app = Celery("ollystack")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _beat_schedule_under_var_dir(sender: Celery, **kwargs: Any) -> None:
    from django.conf import settings

    if not getattr(settings, "CELERY_BEAT_SCHEDULE_FILENAME", None):
        sender.conf.beat_schedule_filename = str(Path(settings.VAR_DIR) / "celerybeat-schedule")
