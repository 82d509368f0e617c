"""The dashboard at / (behind sign-in and the code) and the public health check."""

from __future__ import annotations

import pytest
from django.urls import reverse
from staff import make_staff, sign_in

from backoffice import roles

pytestmark = pytest.mark.django_db


def test_the_dashboard_is_the_site_root():
    assert reverse("dashboard") == "/"


def test_the_dashboard_asks_a_stranger_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"


def test_the_dashboard_asks_for_the_code_after_the_password(client):
    sign_in(client, make_staff(roles.VIEWER), verified=False)
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/otp/?next=/"


def test_the_dashboard_lists_the_apps_for_a_verified_member(client):
    sign_in(client, make_staff(roles.VIEWER))
    response = client.get("/")
    assert response.status_code == 200
    for name in (b"Dashboard", b"Parties", b"Payments", b"Deposits", b"Payouts", b"Webhooks"):
        assert name in response.content
    for href in (b'href="/parties/"', b'href="/payments/"', b'href="/webhooks/events/"'):
        assert href in response.content


def test_healthz_is_public_and_says_the_process_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-store" in response["Cache-Control"]


def test_healthz_answers_a_member_before_the_code_too(client):
    sign_in(client, make_staff(roles.VIEWER), verified=False)
    assert client.get("/healthz").status_code == 200
