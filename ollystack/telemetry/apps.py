from django.apps import AppConfig


class TelemetryConfig(AppConfig):
    name = "ollystack.telemetry"
    label = "telemetry"
