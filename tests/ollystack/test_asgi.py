"""The ASGI application's HTTP side: Django's middleware chain entered once per request, in one thread."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import override_settings
from django.urls import path
from django.utils.deprecation import MiddlewareMixin

from ollystack.asgi import SyncStackASGIHandler, application, django_application

pytestmark = pytest.mark.django_db(transaction=True)


class RecordThread(MiddlewareMixin):
    """Notes the thread of its request and response hooks in the response's headers."""

    def process_request(self, request: HttpRequest) -> None:
        request.META["x_request_thread"] = threading.get_ident()

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        response["X-Request-Thread"] = str(request.META["x_request_thread"])
        response["X-Response-Thread"] = str(threading.get_ident())
        return response


def where(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"view_thread": threading.get_ident()})


urlpatterns = [path("where/", where)]


def get(app: Any, url: str) -> tuple[int, dict[str, str], bytes, int]:
    """One GET through the ASGI app: status, headers, body and the event loop's thread."""
    path_, _, query = url.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path_,
        "raw_path": path_.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8080")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }

    async def exchange() -> tuple[int, dict[str, str], bytes, int]:
        communicator = ApplicationCommunicator(app, scope)
        await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await communicator.receive_output(10)
        body = b""
        while True:
            message = await communicator.receive_output(10)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await communicator.wait(10)
        headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
        return start["status"], headers, body, threading.get_ident()

    result: tuple[int, dict[str, str], bytes, int] = async_to_sync(exchange)()
    return result


def test_the_middleware_chain_is_synchronous() -> None:
    # Django's own ASGIHandler builds an async chain, with a thread hop around every middleware hook
    chain = vars(django_application)["_middleware_chain"]  # set by load_middleware, not in the stubs
    assert not asyncio.iscoroutinefunction(chain)


@override_settings(ROOT_URLCONF=__name__, MIDDLEWARE=[f"{__name__}.RecordThread"])
def test_middleware_and_view_run_in_one_thread_off_the_event_loop() -> None:
    status, headers, body, loop_thread = get(SyncStackASGIHandler(), "/where/")
    assert status == 200
    view_thread = int(json.loads(body)["view_thread"])
    assert int(headers["x-request-thread"]) == view_thread
    assert int(headers["x-response-thread"]) == view_thread
    assert view_thread != loop_thread


def test_pages_answer_through_the_asgi_application() -> None:
    status, headers, body, _loop = get(application, "/accounts/login/")
    assert status == 200
    assert "csrftoken=" in headers["set-cookie"]  # the session and CSRF middleware ran
    assert b'name="password"' in body

    status, *_rest = get(application, "/healthz")
    assert status == 200

    status, _headers, body, _loop = get(application, "/api/v1/services")
    assert status in (401, 403)  # refused, with a message, not an error page
    assert b"credentials" in body.lower() or b"authenticat" in body.lower()
