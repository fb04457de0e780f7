"""GraphQL at /graphql/: the REST read API's questions in one request, over the same reads.

Resolvers validate their arguments with the REST serializers (``params``) and call ``reads`` (cached per
tenant and query), so both APIs give the same answers and refuse the same input with the same message.
Authentication and the tenant come from DRF exactly as for REST (API key, JWT or session; ``?tenant=``).

Every request is validated against limits before it runs: the depth of the selection and a cost (each
field 1, each top-level read ``READ_COST`` more), so that one request cannot fan out into hundreds of
ClickHouse queries. Introspection (and the GraphiQL page, which needs it) follows
``OLLYSTACK_GRAPHQL_INTROSPECTION``: on in the embedded profile, off in production.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import graphene
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase
from graphene.types.generic import GenericScalar
from graphene_django.views import GraphQLView
from graphql import GraphQLError, specified_rules
from graphql.language import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
)
from graphql.validation import ASTValidationRule, ValidationContext
from rest_framework import exceptions
from rest_framework.request import Request

from ollystack.telemetry.api import reads, responses
from ollystack.telemetry.api.access import ReadView, tenant_id_for
from ollystack.telemetry.api.errors import flatten
from ollystack.telemetry.api.params import (
    HEX_ID_32,
    ErrorParams,
    LogParams,
    TimeRangeParams,
    TraceSearchParams,
    validate,
)

READ_COST = 10
TENANT_ATTRIBUTE = "ollystack_tenant_id"
INTROSPECTION_FIELDS = ("__schema", "__type")
R = TypeVar("R")


# --- scalars and types ---------------------------------------------------------------------------------


class Time(graphene.Scalar):
    """A time: RFC 3339 (``"2025-01-31T12:00:00Z"``) or Unix seconds (``1738324800``, ``"1738324800.25"``)."""

    @staticmethod
    def serialize(value: Any) -> str:
        return str(value)

    @staticmethod
    def parse_value(value: Any) -> str:
        return str(value)

    @staticmethod
    def parse_literal(node: ValueNode, _variables: Any = None) -> str | None:
        value = getattr(node, "value", None)
        return None if value is None else str(value)


class Latency(graphene.ObjectType):
    """Nanoseconds."""

    mean = graphene.Float()
    p50 = graphene.Float()
    p90 = graphene.Float(description="Not on topology edges.")
    p95 = graphene.Float()
    p99 = graphene.Float()


class ServiceRed(graphene.ObjectType):
    """Requests entering a service (or one operation's spans): counts are sums of sampling weights."""

    service = graphene.String(required=True)
    operation = graphene.String(description="Span name (operations only).")
    requests = graphene.Float(required=True)
    request_rate = graphene.Float(required=True, description="Per second over the range.")
    errors = graphene.Float(required=True)
    error_rate = graphene.Float(required=True)
    duration_ns = graphene.Field(Latency, required=True)


class TraceSummary(graphene.ObjectType):
    trace_id = graphene.String(required=True)
    root_service = graphene.String(required=True)
    root_operation = graphene.String(required=True)
    start_time_unix_nano = graphene.String(required=True, description="Nanoseconds, decimal.")
    duration_ns = graphene.Float(required=True)
    span_count = graphene.Int(required=True)
    error_count = graphene.Int(required=True)
    services = graphene.List(graphene.NonNull(graphene.String), required=True)


class Span(graphene.ObjectType):
    """A span in OTLP/JSON shape (nested parts as JSON)."""

    traceId = graphene.String()  # OTLP/JSON names: resolved from the span's keys
    spanId = graphene.String()
    parentSpanId = graphene.String()
    name = graphene.String()
    kind = graphene.Int()
    startTimeUnixNano = graphene.String()
    endTimeUnixNano = graphene.String()
    serviceName = graphene.String()
    status = GenericScalar()
    attributes = GenericScalar()
    events = GenericScalar()
    links = GenericScalar()
    resource = GenericScalar()
    scope = GenericScalar()


class Trace(graphene.ObjectType):
    traceId = graphene.String(required=True)
    spans = graphene.List(graphene.NonNull(Span), required=True)


class LogRecord(graphene.ObjectType):
    """A log record in OTLP/JSON shape (nested parts as JSON)."""

    timeUnixNano = graphene.String()
    observedTimeUnixNano = graphene.String()
    severityNumber = graphene.Int()
    severityText = graphene.String()
    body = GenericScalar()
    attributes = GenericScalar()
    traceId = graphene.String()
    spanId = graphene.String()
    eventName = graphene.String()
    serviceName = graphene.String()
    resource = GenericScalar()
    scope = GenericScalar()


class LogPage(graphene.ObjectType):
    records = graphene.List(graphene.NonNull(LogRecord), required=True)
    next_cursor = graphene.String(description="Pass as cursor for older records; null on the last page.")


class MetricName(graphene.ObjectType):
    name = graphene.String(required=True)
    type = graphene.String(required=True)
    description = graphene.String(required=True)
    unit = graphene.String(required=True)
    points = graphene.Int(required=True)
    services = graphene.List(graphene.NonNull(graphene.String), required=True)


class ErrorGroup(graphene.ObjectType):
    service = graphene.String(required=True)
    exception_type = graphene.String(required=True)
    fingerprint = graphene.String(required=True)
    pattern = graphene.String(required=True)
    count = graphene.Float(required=True)
    first_seen_unix_nano = graphene.String(required=True)
    last_seen_unix_nano = graphene.String(required=True)
    example_message = graphene.String(required=True)
    example_trace_id = graphene.String(required=True)
    example_span_id = graphene.String(required=True)


class TopologyNode(graphene.ObjectType):
    service = graphene.String(required=True)
    instrumented = graphene.Boolean(required=True)


class TopologyEdge(graphene.ObjectType):
    caller = graphene.String(required=True)
    callee = graphene.String(required=True)
    instrumented = graphene.Boolean(required=True)
    calls = graphene.Float(required=True)
    errors = graphene.Float(required=True)
    error_rate = graphene.Float(required=True)
    duration_ns = graphene.Field(Latency, required=True)


class Topology(graphene.ObjectType):
    nodes = graphene.List(graphene.NonNull(TopologyNode), required=True)
    edges = graphene.List(graphene.NonNull(TopologyEdge), required=True)


class AttributeFilter(graphene.InputObjectType):
    key = graphene.String(required=True)
    value = graphene.String(required=True)


# --- resolvers -----------------------------------------------------------------------------------------


def _errors_as_graphql(resolver: Callable[..., R]) -> Callable[..., R]:
    """Refusals carry the same one-line message as REST (``start: '…' is not a time; …``)."""

    @wraps(resolver)
    def wrapper(*args: Any, **kwargs: Any) -> R:
        try:
            return resolver(*args, **kwargs)
        except exceptions.APIException as exc:
            raise GraphQLError(flatten(exc.detail)) from None
        except ValueError as exc:
            raise GraphQLError(str(exc)) from None

    return wrapper


def _tenant(info: graphene.ResolveInfo) -> str:
    tenant_id = getattr(info.context, TENANT_ATTRIBUTE, None)
    if not tenant_id:
        raise GraphQLError("no tenant for this request")
    return str(tenant_id)


def _range(start: str | None, end: str | None) -> dict[str, Any]:
    return {"start": start, "end": end}


RANGE_ARGS = {
    "start": Time(description="Start of the range, inclusive. Default: one hour before end."),
    "end": Time(description="End of the range. Default: now."),
}


class Query(graphene.ObjectType):
    services = graphene.List(
        graphene.NonNull(ServiceRed), required=True, description="Services with RED figures.", **RANGE_ARGS
    )
    operations = graphene.List(
        graphene.NonNull(ServiceRed),
        required=True,
        description="Operations of one service with RED figures.",
        service=graphene.String(required=True),
        **RANGE_ARGS,
    )
    trace_search = graphene.List(
        graphene.NonNull(TraceSummary),
        required=True,
        description="The newest traces with a span matching every condition.",
        service=graphene.String(),
        operation=graphene.String(),
        min_duration=graphene.String(description="250ms, 1.5s, 800us"),
        max_duration=graphene.String(),
        status=graphene.String(description="error or ok"),
        attributes=graphene.List(graphene.NonNull(AttributeFilter)),
        limit=graphene.Int(),
        **RANGE_ARGS,
    )
    trace = graphene.Field(
        Trace, description="Every span of one trace; null when none.", trace_id=graphene.String(required=True)
    )
    logs = graphene.Field(
        LogPage,
        required=True,
        description="Log records, newest first.",
        service=graphene.String(),
        severity=graphene.String(
            description="Minimum: a number 1-24 or TRACE, DEBUG, INFO, WARN, ERROR, FATAL."
        ),
        text=graphene.String(),
        trace_id=graphene.String(),
        limit=graphene.Int(),
        cursor=graphene.String(),
        **RANGE_ARGS,
    )
    metric_names = graphene.List(graphene.NonNull(MetricName), required=True, **RANGE_ARGS)
    errors = graphene.List(
        graphene.NonNull(ErrorGroup),
        required=True,
        service=graphene.String(),
        limit=graphene.Int(),
        **RANGE_ARGS,
    )
    topology = graphene.Field(Topology, required=True, **RANGE_ARGS)

    @staticmethod
    @_errors_as_graphql
    def resolve_services(_root: Any, info: graphene.ResolveInfo, **args: Any) -> list[dict[str, Any]]:
        params = validate(TimeRangeParams, _range(args.get("start"), args.get("end")))
        window = params["window"]
        return [responses.red_json(row, window) for row in reads.service_list(_tenant(info), window)]

    @staticmethod
    @_errors_as_graphql
    def resolve_operations(
        _root: Any, info: graphene.ResolveInfo, service: str, **args: Any
    ) -> list[dict[str, Any]]:
        params = validate(TimeRangeParams, _range(args.get("start"), args.get("end")))
        window = params["window"]
        rows = reads.operation_list(_tenant(info), service, window)
        return [responses.red_json(row, window, operation=True) for row in rows]

    @staticmethod
    @_errors_as_graphql
    def resolve_trace_search(_root: Any, info: graphene.ResolveInfo, **args: Any) -> list[dict[str, Any]]:
        filters = args.pop("attributes", None) or []
        params = validate(TraceSearchParams, args)
        keys = [f["key"] for f in filters]
        if len(set(keys)) != len(keys):
            raise GraphQLError("attributes: a key is given more than once; an attribute has one value")
        query = reads.trace_query(params, tuple(sorted((f["key"], f["value"]) for f in filters)))
        return [
            responses.summary_json(s) for s in reads.trace_summaries(_tenant(info), query, params["window"])
        ]

    @staticmethod
    @_errors_as_graphql
    def resolve_trace(_root: Any, info: graphene.ResolveInfo, trace_id: str) -> dict[str, Any] | None:
        if not HEX_ID_32.match(trace_id):
            raise GraphQLError(f"traceId: {trace_id!r} is not a trace id; send 32 hexadecimal characters")
        spans = reads.trace_spans(_tenant(info), trace_id.lower())
        return {"traceId": trace_id.lower(), "spans": spans} if spans else None

    @staticmethod
    @_errors_as_graphql
    def resolve_logs(_root: Any, info: graphene.ResolveInfo, **args: Any) -> dict[str, Any]:
        params = validate(LogParams, args)
        query = reads.log_query(params)
        page = reads.log_page(_tenant(info), query, params["window"])
        return {"records": page.records, "next_cursor": page.next_cursor}

    @staticmethod
    @_errors_as_graphql
    def resolve_metric_names(_root: Any, info: graphene.ResolveInfo, **args: Any) -> list[dict[str, Any]]:
        params = validate(TimeRangeParams, _range(args.get("start"), args.get("end")))
        return reads.metric_names(_tenant(info), params["window"])

    @staticmethod
    @_errors_as_graphql
    def resolve_errors(_root: Any, info: graphene.ResolveInfo, **args: Any) -> list[dict[str, Any]]:
        params = validate(ErrorParams, args)
        groups = reads.error_groups(_tenant(info), params["window"], params.get("service"), params["limit"])
        return [responses.error_json(group) for group in groups]

    @staticmethod
    @_errors_as_graphql
    def resolve_topology(_root: Any, info: graphene.ResolveInfo, **args: Any) -> dict[str, Any]:
        params = validate(TimeRangeParams, _range(args.get("start"), args.get("end")))
        return responses.topology_json(reads.topology_edges(_tenant(info), params["window"]))


schema = graphene.Schema(query=Query, auto_camelcase=True)


# --- limits --------------------------------------------------------------------------------------------


def query_limits(max_depth: int, max_cost: int) -> type[ASTValidationRule]:
    """A validation rule refusing operations deeper than ``max_depth`` fields or costlier than
    ``max_cost`` (fragments expanded; introspection fields are free, their depth is the schema's)."""

    class QueryLimits(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.fragments = {
                d.name.value: d for d in context.document.definitions if isinstance(d, FragmentDefinitionNode)
            }

        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            name = node.name.value if node.name else "anonymous"
            depth, cost = self.measure(node.selection_set, 0, ())
            if depth > max_depth:
                self.report_error(
                    GraphQLError(
                        f"operation {name!r} is {depth} fields deep; the limit is {max_depth}: "
                        "ask for fewer nested fields",
                        node,
                    )
                )
            if cost > max_cost:
                self.report_error(
                    GraphQLError(
                        f"operation {name!r} costs {cost} (each field 1, each top-level read "
                        f"{READ_COST} more); the limit is {max_cost}: split it into several requests "
                        "or ask for fewer fields",
                        node,
                    )
                )

        def measure(
            self, selection_set: SelectionSetNode | None, level: int, seen: tuple[str, ...]
        ) -> tuple[int, int]:
            """(depth, cost) of a selection set at ``level`` (0: the operation's top-level fields)."""
            depth, cost = level, 0
            for selection in selection_set.selections if selection_set else ():
                if isinstance(selection, FieldNode):
                    if selection.name.value.startswith("__"):
                        continue
                    below, below_cost = self.measure(selection.selection_set, level + 1, seen)
                    depth = max(depth, below)
                    cost += 1 + below_cost + (READ_COST if level == 0 else 0)
                elif isinstance(selection, InlineFragmentNode):
                    below, below_cost = self.measure(selection.selection_set, level, seen)
                    depth, cost = max(depth, below), cost + below_cost
                elif isinstance(selection, FragmentSpreadNode):
                    fragment = self.fragments.get(selection.name.value)
                    if fragment is None or fragment.name.value in seen:
                        continue  # unknown or cyclic: the standard rules report it
                    below, below_cost = self.measure(
                        fragment.selection_set, level, (*seen, fragment.name.value)
                    )
                    depth, cost = max(depth, below), cost + below_cost
            return depth, cost

    return QueryLimits


class NoIntrospection(ASTValidationRule):
    """Refuses ``__schema`` and ``__type`` (``__typename`` stays: clients add it to every selection)."""

    def enter_field(self, node: FieldNode, *_args: Any) -> None:
        if node.name.value in INTROSPECTION_FIELDS:
            self.report_error(
                GraphQLError(
                    f"introspection ({node.name.value}) is turned off on this server "
                    "(OLLYSTACK_GRAPHQL_INTROSPECTION); the schema is in the OllyStack documentation",
                    node,
                )
            )


def validation_rules() -> tuple[type[ASTValidationRule], ...]:
    """The standard rules plus ours, from the current settings."""
    rules: list[type[ASTValidationRule]] = [
        *specified_rules,
        query_limits(settings.OLLYSTACK_GRAPHQL_MAX_DEPTH, settings.OLLYSTACK_GRAPHQL_MAX_COST),
    ]
    if not settings.OLLYSTACK_GRAPHQL_INTROSPECTION:
        rules.append(NoIntrospection)
    return tuple(rules)


class GraphQLEndpoint(ReadView):
    """DRF authenticates and authorizes (as every read endpoint); graphene-django executes."""

    schema = None  # not part of the OpenAPI document

    def get(self, request: Request) -> HttpResponseBase:
        return self.execute(request)

    def post(self, request: Request) -> HttpResponseBase:
        return self.execute(request)

    def execute(self, request: Request) -> HttpResponseBase:
        django_request: HttpRequest = request._request
        setattr(django_request, TENANT_ATTRIBUTE, tenant_id_for(request))
        introspection = bool(settings.OLLYSTACK_GRAPHQL_INTROSPECTION)
        view = GraphQLView.as_view(schema=schema, graphiql=introspection, validation_rules=validation_rules())
        return view(django_request)
