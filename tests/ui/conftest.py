"""Browser tests: Debian's Chromium driven by Playwright against a running `serve` fed by the OpenTelemetry
SDK.

One server per session (starting it is the slow part); every test opens its own browser context signed in
as one of the users below, and fails if the page logged a console error or threw. Screenshots go to
``test-artifacts/screenshots/`` (kept by CI as artifacts).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from tests.e2e.conftest import REPO, Server, make_server, wait_for
from tests.ui.traffic import Sent, Traffic

CHROMIUM = os.environ.get("OLLYSTACK_TEST_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
# Headless Chromium as root on a machine with a closed network: no sandbox, no GPU, no calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "correct horse battery staple"
SECOND_TENANT = "second"

# (username, {tenant: role}); "" stands for the bootstrap tenant.
USERS = {
    "olly": {"": "owner", SECOND_TENANT: "viewer"},
    "vera": {"": "viewer"},
    "eddie": {"": "editor"},
}


@dataclass
class UiServer:
    server: Server
    tenant: str
    ingest_key: str
    sent: Sent
    traffic: Traffic

    @property
    def url(self) -> str:
        return self.server.web


def _set_members(server: Server, plan: dict[str, dict[str, str]], create: bool) -> None:
    """``plan``: username → {tenant: role}; ``create`` makes the users first."""
    script = f"""
import json
from django.contrib.auth import get_user_model
from tenants.logic import set_membership
plan = json.loads({json.dumps(json.dumps(plan))})
User = get_user_model()
for username, roles in plan.items():
    if {create!r}:
        user = User.objects.create_user(username, password={PASSWORD!r})
    else:
        user = User.objects.get(username=username)
    for tenant, role in roles.items():
        set_membership(tenant, user, role)
"""
    server.manage("shell", "-c", script)


def _create_users(server: Server, tenant: str) -> None:
    plan = {user: {(name or tenant): role for name, role in roles.items()} for user, roles in USERS.items()}
    _set_members(server, plan, create=True)


@pytest.fixture(scope="session")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    server = make_server(tmp_path_factory.mktemp("ui") / "var")
    # every test signs in afresh, all from 127.0.0.1: more than allauth's 30 sign-ins a minute per address
    server.extra_env["OLLYSTACK_LOGIN_RATE"] = "600/m/ip"
    server.start()
    try:
        boot = server.bootstrap()
        server.create_tenant(SECOND_TENANT)
        _create_users(server, boot["tenant"])
        traffic = Traffic(server.otlp_http, boot["ingest_key"])
        sent = traffic.send()
        key = json.loads(
            server.manage("tenant", "create-key", boot["tenant"], "--kind", "api", "--json").stdout
        )["key"]
        wait_for(
            lambda: server.api("/api/v1/traces?limit=1000", key)["traces"].__len__() >= len(sent.trace_ids)
        )
        yield UiServer(server, boot["tenant"], boot["ingest_key"], sent, traffic)
        traffic.close()
    finally:
        if server.proc is not None:
            server.stop()


@dataclass
class OwnTenant:
    """A tenant of one test (same members and roles as the shared one) and the SDK sending to it."""

    name: str
    ingest_key: str
    traffic: Traffic


@contextlib.contextmanager
def tenant_of_its_own(ui: UiServer) -> Iterator[OwnTenant]:
    """A new tenant with the shared tenant's members and roles, for traffic that would change what other
    tests see in the shared one (pages are opened with ``?tenant=<name>``)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    made = ui.server.create_tenant(name)
    plan = {user: {name: roles[""]} for user, roles in USERS.items()}
    _set_members(ui.server, plan, create=False)
    traffic = Traffic(ui.server.otlp_http, made["ingest_key"])
    try:
        yield OwnTenant(name, made["ingest_key"], traffic)
    finally:
        traffic.close()


@pytest.fixture
def own_tenant(ui: UiServer) -> Iterator[OwnTenant]:
    """A tenant of this test alone (``tenant_of_its_own``)."""
    with tenant_of_its_own(ui) as tenant:
        yield tenant


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (`make test` does) "
            "or set OLLYSTACK_TEST_CHROMIUM"
        )
    instance = playwright_driver.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield instance
    instance.close()


def shot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


class ConsoleErrors:
    """Console errors and uncaught exceptions of a page; a test fails if any were seen."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console.error: {message.text} ({message.location.get('url', '')})")

    def expect(self, *fragments: str) -> None:
        """Accept errors containing one of ``fragments`` (a test that provokes a refusal on purpose)."""
        self.errors = [e for e in self.errors if not any(f in e for f in fragments)]


@dataclass
class Session:
    page: Page
    console: ConsoleErrors
    base: str

    def open(self, path: str) -> Page:
        self.page.goto(f"{self.base}{path}")
        return self.page


@pytest.fixture
def sign_in(ui: UiServer, browser: Browser) -> Iterator[Callable[..., Session]]:
    """``sign_in("vera")`` → a signed-in page for that user (password form of django-allauth)."""
    sessions: list[Session] = []

    def _sign_in(username: str = "olly") -> Session:
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        session = Session(page, ConsoleErrors(page), ui.url)
        page.goto(f"{ui.url}/accounts/login/")
        page.fill("#id_login", username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/services/**", timeout=30_000)
        sessions.append(session)
        return session

    yield _sign_in
    errors = [e for s in sessions for e in s.console.errors]
    for s in sessions:
        s.page.context.close()
    assert not errors, "the browser logged errors:\n" + "\n".join(errors)
