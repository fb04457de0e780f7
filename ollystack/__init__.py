"""OllyStack: OpenTelemetry in, ClickHouse underneath, answers out."""

__version__ = "0.1.0"
