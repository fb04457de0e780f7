"""Signing in and out, the tenant switcher, and what the shell shows for each role."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, expect

from tests.ui.conftest import SECOND_TENANT, Session, UiServer, shot

pytestmark = [pytest.mark.e2e, pytest.mark.browser]


def test_a_wrong_password_is_refused_with_a_message(ui: UiServer, browser: Browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{ui.url}/services/")
    assert "/accounts/login/" in page.url, "pages need a session"
    page.fill("#id_login", "olly")
    page.fill("#id_password", "not the password")
    page.click("button[type=submit]")
    expect(page.locator(".card .error")).to_contain_text("not correct")
    shot(page, "login")
    context.close()


def test_sign_in_switch_tenant_and_sign_out(sign_in: Callable[..., Session], ui: UiServer) -> None:
    session = sign_in("olly")
    page = session.page
    select = page.locator("#tenant-select")
    expect(select).to_have_value(ui.tenant)
    expect(page.locator("#role")).to_have_text("owner")
    select.select_option(SECOND_TENANT)
    page.wait_for_load_state("load")
    expect(page.locator("#tenant-select")).to_have_value(SECOND_TENANT)
    expect(page.locator("#role")).to_have_text("viewer")
    page.click("#logout")
    page.wait_for_url("**/accounts/login/**")
    page.goto(f"{ui.url}/services/")
    assert "/accounts/login/" in page.url, "signed out: the session is gone"


def test_the_keyboard_reaches_the_navigation_first(sign_in: Callable[..., Session]) -> None:
    page = sign_in("vera").page
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Skip to content")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("OllyStack")
    page.keyboard.press("Tab")
    expect(page.locator(":focus")).to_have_text("Services")
