"""Alert endpoints: rules, channels and silences (read by members, changed by editors and up), the alerts
firing now, their history and the delivery log.

Views are thin: they parse, call one ``alerts.logic`` function for the caller's tenant and format the
answer. Unknown body fields are refused, so a misspelt field is not silently ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts import logic
from alerts.api import serializers as s
from ollystack.telemetry.api.access import ERRORS, TenantPermission, parse, tenant_access, tenant_id_for
from ollystack.telemetry.api.params import ErrorBody, TenantParam
from tenants.logic import Permission


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


@contextmanager
def answers() -> Iterator[None]:
    """Turns ``alerts.logic`` errors into HTTP answers that keep the logic's message."""
    try:
        yield
    except logic.InvalidSpec as exc:
        raise exceptions.ValidationError({exc.field: exc.message} if exc.field else exc.message) from None
    except logic.NotFound as exc:
        raise exceptions.NotFound(str(exc)) from None
    except logic.NameTaken as exc:
        raise Conflict(str(exc)) from None
    except logic.AlertError as exc:
        raise exceptions.ValidationError(str(exc)) from None


def body(serializer_class: type[serializers.Serializer], request: Request, partial: bool = False) -> Any:
    """The validated JSON body; fields the endpoint does not know are refused, read-only ones ignored."""
    if not isinstance(request.data, dict):
        raise exceptions.ValidationError("send a JSON object")
    serializer = serializer_class(data=request.data, partial=partial)
    unknown = sorted(set(request.data) - set(serializer.fields))
    if unknown:
        writable = sorted(n for n, f in serializer.fields.items() if not f.read_only)
        raise exceptions.ValidationError({unknown[0]: f"unknown field; send {', '.join(writable)}"})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _time(ns: int | None) -> datetime | None:
    return None if ns is None else datetime.fromtimestamp(ns / 1e9, tz=UTC)


def _id(name: str, what: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.INT, OpenApiParameter.PATH, description=f"The {what}'s id.")


CONFLICT = OpenApiResponse(ErrorBody, description="Another one of the tenant already has this name.")
NOT_FOUND = OpenApiResponse(ErrorBody, description="No such object in this tenant.")
READ_WRITE = {"GET": Permission.READ, "POST": Permission.WRITE}
DETAIL = {
    "GET": Permission.READ,
    "PUT": Permission.WRITE,
    "PATCH": Permission.WRITE,
    "DELETE": Permission.WRITE,
}
RULE_ID = _id("rule_id", "rule")
CHANNEL_ID = _id("channel_id", "channel")
SILENCE_ID = _id("silence_id", "silence")


class AlertView(APIView):
    permission_classes = [TenantPermission]


# --- rules ------------------------------------------------------------------------------------------


class RulesView(AlertView):
    required_permission = READ_WRITE

    @extend_schema(
        operation_id="alert_rules_list",
        summary="Alert rules of your tenant",
        parameters=[s.RuleListParams],
        responses={200: s.RuleListSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = parse(s.RuleListParams, request)
        rules = logic.list_rules(tenant_id_for(request), params.get("enabled"))
        return Response({"rules": [s.rule_json(rule) for rule in rules]})

    @extend_schema(
        operation_id="alert_rules_create",
        summary="Create an alert rule (editor and up, or a key with the write scope)",
        description="source red needs service and red_figure; logs needs log_query and/or log_min_severity; "
        "promql needs expr (an instant vector). Anomaly rules take source red or promql. Fields the source "
        "does not use are reset.",
        parameters=[TenantParam],
        request=s.RuleSerializer,
        responses={201: s.RuleSerializer, 409: CONFLICT, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        parse(TenantParam, request)
        data = s.rule_changes(body(s.RuleSerializer, request))
        access = tenant_access(request)
        with answers():
            rule = logic.create_rule(access.tenant_id, logic.RuleSpec(**data), created_by=access.user_id)
        return Response(s.rule_json(rule), status=status.HTTP_201_CREATED)


class RuleView(AlertView):
    required_permission = DETAIL

    @extend_schema(
        operation_id="alert_rule_get",
        summary="One alert rule",
        parameters=[RULE_ID, TenantParam],
        responses={200: s.RuleSerializer, 404: NOT_FOUND, **ERRORS},
    )
    def get(self, request: Request, rule_id: int) -> Response:
        parse(TenantParam, request)
        with answers():
            return Response(s.rule_json(logic.get_rule(tenant_id_for(request), rule_id)))

    @extend_schema(
        operation_id="alert_rule_replace",
        summary="Replace an alert rule; omitted fields take their defaults",
        parameters=[RULE_ID, TenantParam],
        request=s.RuleSerializer,
        responses={200: s.RuleSerializer, 404: NOT_FOUND, 409: CONFLICT, **ERRORS},
    )
    def put(self, request: Request, rule_id: int) -> Response:
        parse(TenantParam, request)
        data = s.rule_changes(body(s.RuleSerializer, request))
        with answers():
            rule = logic.update_rule(tenant_id_for(request), rule_id, logic.RuleSpec(**data))
        return Response(s.rule_json(rule))

    @extend_schema(
        operation_id="alert_rule_update",
        summary="Change some fields of an alert rule (e.g. enabled, threshold)",
        parameters=[RULE_ID, TenantParam],
        request=s.RuleSerializer,
        responses={200: s.RuleSerializer, 404: NOT_FOUND, 409: CONFLICT, **ERRORS},
    )
    def patch(self, request: Request, rule_id: int) -> Response:
        parse(TenantParam, request)
        changes = s.rule_changes(body(s.RuleSerializer, request, partial=True))
        with answers():
            rule = logic.patch_rule(tenant_id_for(request), rule_id, **changes)
        return Response(s.rule_json(rule))

    @extend_schema(
        operation_id="alert_rule_delete",
        summary="Delete an alert rule with its state and history",
        parameters=[RULE_ID, TenantParam],
        responses={204: None, 404: NOT_FOUND, **ERRORS},
    )
    def delete(self, request: Request, rule_id: int) -> Response:
        parse(TenantParam, request)
        with answers():
            logic.delete_rule(tenant_id_for(request), rule_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- channels ---------------------------------------------------------------------------------------


def _channel_spec(data: dict[str, Any]) -> logic.ChannelSpec:
    return logic.ChannelSpec(**s.channel_changes(data))


class ChannelsView(AlertView):
    required_permission = READ_WRITE

    @extend_schema(
        operation_id="alert_channels_list",
        summary="Notification channels of your tenant (secrets are never shown)",
        parameters=[TenantParam],
        responses={200: s.ChannelListSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        parse(TenantParam, request)
        channels = logic.list_channels(tenant_id_for(request))
        return Response({"channels": [s.channel_json(c) for c in channels]})

    @extend_schema(
        operation_id="alert_channels_create",
        summary="Create a notification channel (editor and up, or a key with the write scope)",
        description="alertmanager, slack and webhook need url; pagerduty needs secret (the routing key); "
        "email needs recipients.",
        parameters=[TenantParam],
        request=s.ChannelSerializer,
        responses={201: s.ChannelSerializer, 409: CONFLICT, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        parse(TenantParam, request)
        spec = _channel_spec(body(s.ChannelSerializer, request))
        with answers():
            channel = logic.create_channel(tenant_id_for(request), spec)
        return Response(s.channel_json(channel), status=status.HTTP_201_CREATED)


class ChannelView(AlertView):
    required_permission = DETAIL

    @extend_schema(
        operation_id="alert_channel_get",
        summary="One notification channel",
        parameters=[CHANNEL_ID, TenantParam],
        responses={200: s.ChannelSerializer, 404: NOT_FOUND, **ERRORS},
    )
    def get(self, request: Request, channel_id: int) -> Response:
        parse(TenantParam, request)
        with answers():
            return Response(s.channel_json(logic.get_channel(tenant_id_for(request), channel_id)))

    @extend_schema(
        operation_id="alert_channel_replace",
        summary="Replace a channel; url and secret stay as stored unless given",
        parameters=[CHANNEL_ID, TenantParam],
        request=s.ChannelSerializer,
        responses={200: s.ChannelSerializer, 404: NOT_FOUND, 409: CONFLICT, **ERRORS},
    )
    def put(self, request: Request, channel_id: int) -> Response:
        parse(TenantParam, request)
        spec = _channel_spec(body(s.ChannelSerializer, request))
        with answers():
            channel = logic.update_channel(tenant_id_for(request), channel_id, spec)
        return Response(s.channel_json(channel))

    @extend_schema(
        operation_id="alert_channel_update",
        summary="Change some fields of a channel",
        parameters=[CHANNEL_ID, TenantParam],
        request=s.ChannelSerializer,
        responses={200: s.ChannelSerializer, 404: NOT_FOUND, 409: CONFLICT, **ERRORS},
    )
    def patch(self, request: Request, channel_id: int) -> Response:
        parse(TenantParam, request)
        changes = s.channel_changes(body(s.ChannelSerializer, request, partial=True))
        with answers():
            channel = logic.patch_channel(tenant_id_for(request), channel_id, **changes)
        return Response(s.channel_json(channel))

    @extend_schema(
        operation_id="alert_channel_delete",
        summary="Delete a channel and its delivery log (disable it to keep the log)",
        parameters=[CHANNEL_ID, TenantParam],
        responses={204: None, 404: NOT_FOUND, **ERRORS},
    )
    def delete(self, request: Request, channel_id: int) -> Response:
        parse(TenantParam, request)
        with answers():
            logic.delete_channel(tenant_id_for(request), channel_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChannelTestView(AlertView):
    required_permission = Permission.WRITE

    @extend_schema(
        operation_id="alert_channel_test",
        summary="Send a test notification through a channel now (nothing is stored)",
        description="Answers 200 with the outcome either way: ok false carries the status code or the "
        "error the target gave. Silences and mute windows do not apply to a test.",
        parameters=[CHANNEL_ID, TenantParam],
        request=None,
        responses={200: s.ChannelTestSerializer, 404: NOT_FOUND, **ERRORS},
    )
    def post(self, request: Request, channel_id: int) -> Response:
        from alerts.notify import send_test

        parse(TenantParam, request)
        with answers():
            channel = logic.get_channel(tenant_id_for(request), channel_id)
        result = send_test(channel)
        return Response(
            s.ChannelTestSerializer(
                {
                    "ok": result.ok,
                    "status_code": result.status_code,
                    "error": result.error,
                    "duration_ms": result.duration_ms,
                }
            ).data
        )


# --- silences ---------------------------------------------------------------------------------------


class SilencesView(AlertView):
    required_permission = READ_WRITE

    @extend_schema(
        operation_id="alert_silences_list",
        summary="Silences of your tenant, latest ending first (at most 1000)",
        parameters=[s.SilenceListParams],
        responses={200: s.SilenceListSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = parse(s.SilenceListParams, request)
        silences = logic.list_silences(tenant_id_for(request), params.get("status"))
        return Response({"silences": [s.silence_json(x) for x in silences]})

    @extend_schema(
        operation_id="alert_silences_create",
        summary="Silence the notifications of matching alerts for a while",
        description="Alertmanager's matchers: every one must match the alert's labels (alertname, severity, "
        "the rule's and the series' labels); a missing label counts as empty; regular expressions match the "
        "whole value.",
        parameters=[TenantParam],
        request=s.SilenceSerializer,
        responses={201: s.SilenceSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        parse(TenantParam, request)
        data = body(s.SilenceSerializer, request)
        access = tenant_access(request)
        with answers():
            silence = logic.create_silence(access.tenant_id, s.silence_spec(data), created_by=access.user_id)
        return Response(s.silence_json(silence), status=status.HTTP_201_CREATED)


class SilenceView(AlertView):
    required_permission = {"GET": Permission.READ, "PUT": Permission.WRITE, "DELETE": Permission.WRITE}

    @extend_schema(
        operation_id="alert_silence_get",
        summary="One silence",
        parameters=[SILENCE_ID, TenantParam],
        responses={200: s.SilenceSerializer, 404: NOT_FOUND, **ERRORS},
    )
    def get(self, request: Request, silence_id: int) -> Response:
        parse(TenantParam, request)
        with answers():
            return Response(s.silence_json(logic.get_silence(tenant_id_for(request), silence_id)))

    @extend_schema(
        operation_id="alert_silence_replace",
        summary="Change a silence's matchers, times or comment",
        parameters=[SILENCE_ID, TenantParam],
        request=s.SilenceSerializer,
        responses={200: s.SilenceSerializer, 404: NOT_FOUND, **ERRORS},
    )
    def put(self, request: Request, silence_id: int) -> Response:
        parse(TenantParam, request)
        data = body(s.SilenceSerializer, request)
        with answers():
            silence = logic.update_silence(tenant_id_for(request), silence_id, s.silence_spec(data))
        return Response(s.silence_json(silence))

    @extend_schema(
        operation_id="alert_silence_expire",
        summary="Expire a silence now (it stays listed, as expired)",
        parameters=[SILENCE_ID, TenantParam],
        responses={200: s.SilenceSerializer, 404: NOT_FOUND, **ERRORS},
    )
    def delete(self, request: Request, silence_id: int) -> Response:
        parse(TenantParam, request)
        with answers():
            silence = logic.expire_silence(tenant_id_for(request), silence_id)
        return Response(s.silence_json(silence))


# --- what happened ----------------------------------------------------------------------------------


class StatesView(AlertView):
    required_permission = Permission.READ

    @extend_schema(
        operation_id="alert_states_list",
        summary="Alerts firing or pending now, most recently changed first",
        parameters=[s.StateParams],
        responses={200: s.AlertStateListSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = parse(s.StateParams, request)
        states = logic.current_alerts(tenant_id_for(request), params.get("state"), params.get("rule"))
        return Response(s.AlertStateListSerializer({"alerts": [s.state_json(x) for x in states]}).data)


class EventsView(AlertView):
    required_permission = Permission.READ

    @extend_schema(
        operation_id="alert_events_list",
        summary="State transitions of alerts (history), newest first",
        parameters=[s.EventParams],
        responses={200: s.AlertEventListSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = parse(s.EventParams, request)
        events = logic.alert_events(
            tenant_id_for(request),
            rule_id=params.get("rule"),
            since=_time(params.get("since")),
            until=_time(params.get("until")),
            to_state=params.get("to_state"),
            limit=params["limit"],
        )
        return Response(s.AlertEventListSerializer({"events": [s.event_json(e) for e in events]}).data)


class NotificationsView(AlertView):
    required_permission = Permission.READ

    @extend_schema(
        operation_id="alert_notifications_list",
        summary="The delivery log: notifications, newest first, with every delivery attempt",
        description="status failed lists notifications that exhausted their attempts; last_error and the "
        "attempts say why (status codes, connection errors).",
        parameters=[s.NotificationParams],
        responses={200: s.NotificationListSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = parse(s.NotificationParams, request)
        found = logic.notifications(
            tenant_id_for(request),
            status=params.get("status"),
            channel_id=params.get("channel"),
            rule_id=params.get("rule"),
            since=_time(params.get("since")),
            limit=params["limit"],
        )
        return Response(
            s.NotificationListSerializer({"notifications": [s.notification_json(n) for n in found]}).data
        )
