"""PromQL: parsed with promql-parser, translated to ClickHouse SQL over metric_points, answered in
Prometheus's HTTP API format."""
