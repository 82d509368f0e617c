from __future__ import annotations

import pytest
from django.db import OperationalError, connection
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_home_lists_the_apps_and_links_the_sandbox_console(client, settings):
    settings.FLASHFX_API_URL = "http://sandbox.test:8001/"
    response = client.get(reverse("home"))
    assert response.status_code == 200
    for name in (b"Parties", b"Payments", b"Webhooks", b"FlashFX sandbox"):
        assert name in response.content
    assert b'href="http://sandbox.test:8001/console/"' in response.content


def test_healthz_reports_ok_after_querying_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_healthz_answers_503_when_the_database_fails(client, monkeypatch):
    def broken_cursor(*args, **kwargs):
        raise OperationalError("database is down")

    monkeypatch.setattr(connection, "cursor", broken_cursor)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "database": "error"}
