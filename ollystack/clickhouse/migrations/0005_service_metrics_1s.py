"""RED per service and operation per second (``service_metrics_1s``), which alert rules read so that their
windows end at the second being evaluated. The view starts with the spans inserted after it exists (nothing
is rewritten): a rule whose window reaches back before the upgrade sees only what came since. Safe to
re-run."""

from ollystack.clickhouse.tables import SchemaOptions
from ollystack.clickhouse.views import service_metrics_1s


def operations(options: SchemaOptions) -> list[str]:
    return service_metrics_1s(options)
