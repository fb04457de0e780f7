"""Errors with Prometheus's HTTP API semantics: an ``errorType`` and the status Prometheus answers with."""

from __future__ import annotations


class PromQLError(Exception):
    """A query that cannot be answered; ``error_type`` and ``status`` are Prometheus's."""

    error_type = "execution"
    status = 422

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadData(PromQLError):
    """Malformed parameters or PromQL (Prometheus: ``bad_data``, 400)."""

    error_type = "bad_data"
    status = 400


class Unsupported(PromQLError):
    """Valid PromQL that OllyStack does not evaluate; the message names the feature."""

    error_type = "execution"
    status = 422


class Timeout(PromQLError):
    error_type = "timeout"
    status = 503
