"""OpenTelemetry metric names and attributes as Prometheus names and labels.

Follows the OpenTelemetry "Prometheus and OpenMetrics compatibility" specification (the same rules as the
collector's Prometheus exporters), so that a dashboard written for metrics scraped from an OTel SDK's
Prometheus exporter works unchanged here:

- the metric name: every character outside ``[a-zA-Z0-9_:]`` becomes ``_``, runs of ``_`` collapse into
  one, a leading digit gets a ``_`` in front;
- the unit becomes a suffix (``ms`` -> ``_milliseconds``, ``By`` -> ``_bytes``, ``s`` -> ``_seconds``,
  ``{request}`` annotations are dropped, ``1/s`` -> ``_per_second``), unless the name already has it;
  a gauge of unit ``1`` gets ``_ratio``;
- a monotonic cumulative sum is a counter: ``_total``;
- an explicit-bucket histogram becomes ``<name>_bucket{le=...}`` (cumulative counts, ``le="+Inf"`` is the
  total count), ``<name>_sum`` and ``<name>_count``; a summary ``<name>{quantile=...}``, ``_sum``, ``_count``;
- attribute keys: characters outside ``[a-zA-Z0-9_]`` become ``_``; a key starting with a digit gets
  ``key_`` in front, one starting with a single ``_`` gets ``key``;
- ``job`` is ``service.namespace/service.name`` (or ``service.name``), ``instance`` is
  ``service.instance.id``.

The label rules exist twice on purpose: in Python (here, for names and tests) and as ClickHouse expressions
(:func:`label_key_sql`), because labels are built and matched inside the query; a unit test keeps both equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# OTel UCUM units -> Prometheus unit words (the specification's table).
UNITS = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "%": "percent",
}
PER_UNITS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}

# Kinds of Prometheus series one OTel metric yields.
VALUE, BUCKET, SUM, COUNT, QUANTILE = "value", "bucket", "sum", "count", "quantile"

_INVALID_NAME = re.compile(r"[^a-zA-Z0-9_:]")
_INVALID_LABEL = re.compile(r"[^a-zA-Z0-9_]")
_UNDERSCORES = re.compile(r"__+")
_ANNOTATION = re.compile(r"\{[^}]*\}")


def _unit_words(unit: str, kind: str) -> list[str]:
    unit = _ANNOTATION.sub("", unit).strip()
    if not unit:
        return []
    if unit == "1":
        return ["ratio"] if kind == "gauge" else []
    main, _, per = unit.partition("/")
    words = []
    if main:
        words.append(UNITS.get(main, main))
    if per:
        words += ["per", PER_UNITS.get(per, per)]
    return [w for w in (_sanitize_name(w).strip("_") for w in words) if w]


def _sanitize_name(name: str) -> str:
    return _UNDERSCORES.sub("_", _INVALID_NAME.sub("_", name))


def metric_name(name: str, unit: str, kind: str, monotonic: bool = False, cumulative: bool = True) -> str:
    """The Prometheus name of an OTel metric (before ``_bucket``/``_sum``/``_count`` for histograms)."""
    base = _sanitize_name(name)
    if base[:1].isdigit():
        base = "_" + base
    tokens = [t for t in base.split("_") if t]
    leading = "_" if base.startswith("_") else ""
    counter = kind == "sum" and monotonic and cumulative
    if counter and tokens and tokens[-1] == "total":
        tokens.pop()
    for word in _unit_words(unit, kind):
        if word not in tokens:
            tokens += word.split("_")
    if counter:
        tokens.append("total")
    return leading + "_".join(tokens)


def label_name(key: str) -> str:
    """A Prometheus label name for an attribute key."""
    out = _INVALID_LABEL.sub("_", key)
    if out[:1].isdigit():
        return "key_" + out
    if out.startswith("_") and not out.startswith("__"):
        return "key" + out
    return out


def label_key_sql(key: str) -> str:
    """:func:`label_name` as a ClickHouse expression over the expression ``key``."""
    clean = f"replaceRegexpAll({key}, '[^a-zA-Z0-9_]', '_')"
    return (
        f"multiIf(match({clean}, '^[0-9]'), concat('key_', {clean}), "
        f"match({clean}, '^_[^_]'), concat('key', {clean}), {clean})"
    )


def job(service_name: str, namespace: str = "") -> str:
    """The ``job`` label of a resource."""
    if not service_name:
        return ""
    return f"{namespace}/{service_name}" if namespace else service_name


def type_name(kind: str, monotonic: bool) -> str:
    """The Prometheus metric type of an OTel metric kind (for metadata)."""
    if kind == "sum":
        return "counter" if monotonic else "gauge"
    return {"gauge": "gauge", "histogram": "histogram", "summary": "summary"}.get(kind, "unknown")


@dataclass(frozen=True)
class Family:
    """One OTel metric as Prometheus sees it: the names it is exposed under, by kind of series."""

    otel_name: str
    kind: str  # gauge, sum, histogram, summary (OTel kinds; others are not exposed)
    unit: str
    description: str
    monotonic: bool
    cumulative: bool
    services: tuple[str, ...] = ()

    @property
    def base(self) -> str:
        return metric_name(self.otel_name, self.unit, self.kind, self.monotonic, self.cumulative)

    @property
    def series_names(self) -> dict[str, str]:
        """Prometheus name -> kind of series (:data:`VALUE`, :data:`BUCKET`, ...)."""
        base = self.base
        if self.kind == "histogram":
            return {f"{base}_bucket": BUCKET, f"{base}_sum": SUM, f"{base}_count": COUNT}
        if self.kind == "summary":
            return {base: QUANTILE, f"{base}_sum": SUM, f"{base}_count": COUNT}
        return {base: VALUE}

    @property
    def prometheus_type(self) -> str:
        return type_name(self.kind, self.monotonic)

    @property
    def delta(self) -> bool:
        """Delta sums and histograms have no Prometheus equivalent (see docs/promql.md)."""
        return self.kind in ("sum", "histogram") and not self.cumulative


EXPOSED_KINDS = ("gauge", "sum", "histogram", "summary")
