"""Each app owns its routes under its own namespace; the paths themselves never moved."""

from __future__ import annotations

import pytest
from django.urls import resolve, reverse

# URL name: path (the paths are what staff bookmark and FlashFX posts to).
ROUTES = {
    "dashboard": "/",
    "audit-trail": "/audit/",
    "healthz": "/healthz",
    "readyz": "/readyz",
    "metrics": "/metrics",
    "login": "/accounts/login/",
    "otp-verify": "/accounts/otp/",
    "step-up": "/accounts/step-up/",
    "sessions": "/accounts/sessions/",
    "payments:deposits": "/deposits/",
    "payments:payouts": "/payouts/",
    "payments:payments": "/payments/",
    "payments:exports": "/exports/",
    "parties:parties": "/parties/",
    "webhooks:events": "/webhooks/events/",
    "webhooks:events-replay": "/webhooks/events/replay/",
    "webhooks:flashfx-webhook": "/webhooks/flashfx/",
    "reconciliation": "/reconciliation/",
    "reconciliation-statement": "/reconciliation/statement/",
}


@pytest.mark.parametrize("name", ROUTES)
def test_each_name_reverses_to_its_unchanged_path(name):
    assert reverse(name) == ROUTES[name]
    assert resolve(ROUTES[name]).view_name == name


@pytest.mark.parametrize("path", ["/webhooks/flashfx/", "/webhooks/flashfx"])
def test_both_spellings_of_the_receiver_reach_the_same_view_in_the_webhooks_app(path):
    """No redirect between them: FlashFX counts one as a failed delivery (docs/flashfx.md §4.2)."""
    match = resolve(path)
    assert match.func.__module__ == "webhooks.views"
    assert match.func.__name__ == "flashfx_webhook"
    assert match.namespace == "webhooks"
