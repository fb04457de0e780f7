"""Alert rules and notifications (evaluated every second by Celery beat)."""
