from django.apps import AppConfig


class OllyStackConfig(AppConfig):
    name = "ollystack"
    verbose_name = "OllyStack platform"
