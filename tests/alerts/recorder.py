"""A real local HTTP server that records what notifiers send it and answers as scripted.

Used by the notification, runtime and end-to-end tests as the webhook, Slack, PagerDuty or Alertmanager
target::

    with Recorder() as target:
        target.script(500, 500, 202)          # two failures, then accepted; afterwards `default_status`
        ...point a channel at target.url ...
        request = target.wait_for(1)[0]
        assert request.json["status"] == "firing"

Every request is kept with its method, path, headers, raw body, parsed JSON (None when the body is not
JSON) and arrival time (``time.time()``, so benchmarks can compare it with a send time). ``refused_url()``
gives a URL where nothing listens, for a target that is down.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # with the query string
    headers: dict[str, str]  # names lower-cased
    body: bytes
    json: Any
    at: float  # time.time() when the request was fully read


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0  # wait before answering (a slow target)


Responder = Callable[[RecordedRequest], Reply]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def refused_url(path: str = "/") -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting to it is refused."""
    return f"http://127.0.0.1:{free_port()}{path}"


class Recorder:
    """Records requests; answers with scripted replies first, then ``responder`` or ``default_status``."""

    def __init__(self, default_status: int = 200, default_body: bytes | str | dict[str, Any] = b"") -> None:
        self.default = Reply(default_status, default_body)
        self.responder: Responder | None = None
        self._script: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------------------

    def start(self) -> Recorder:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    parsed: Any = json.loads(body) if body else None
                except ValueError:
                    parsed = None
                request = RecordedRequest(
                    method=self.command,
                    path=self.path,
                    headers={name.lower(): value for name, value in self.headers.items()},
                    body=body,
                    json=parsed,
                    at=time.time(),
                )
                reply = recorder._record(request)
                if reply.delay_seconds:
                    time.sleep(reply.delay_seconds)
                payload = reply.body
                content_type = "text/plain; charset=utf-8"
                if isinstance(payload, dict | list):
                    payload = json.dumps(payload).encode()
                    content_type = "application/json"
                elif isinstance(payload, str):
                    payload = payload.encode()
                self.send_response(reply.status)
                headers = {"Content-Type": content_type, **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="recorder", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- use ---------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "the recorder is not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. http://127.0.0.1:40123."""
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: int | Reply) -> None:
        """Queue the replies to the next requests, in order (an int is a bare status)."""
        with self._changed:
            self._script.extend(Reply(r) if isinstance(r, int) else r for r in replies)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._changed:
            return list(self._requests)

    def clear(self) -> None:
        with self._changed:
            self._requests.clear()
            self._script.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests arrived; fail saying how many did."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"recorder got {len(self._requests)} request(s) within {timeout} s, "
                        f"expected {count}: {[(r.method, r.path) for r in self._requests]}"
                    )
                self._changed.wait(remaining)
            return list(self._requests)

    def _record(self, request: RecordedRequest) -> Reply:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()
            if self._script:
                return self._script.popleft()
        if self.responder is not None:
            return self.responder(request)
        return self.default
