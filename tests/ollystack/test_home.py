"""The start page says where to send telemetry and links to the API docs and the admin."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.mark.django_db
def test_home_page_shows_endpoints_and_links(clickhouse: object) -> None:
    response = Client().get("/start/", HTTP_HOST="localhost:8080")
    assert response.status_code == 200
    page = response.content.decode()
    assert "localhost:4317" in page
    assert "http://localhost:4318/v1/traces" in page
    assert 'href="/api/docs/"' in page
    assert 'href="/admin/"' in page
    assert 'class="status ok">ready<' in page


@pytest.mark.django_db
def test_the_site_root_sends_visitors_to_sign_in() -> None:
    response = Client().get("/", HTTP_HOST="localhost:8080")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
