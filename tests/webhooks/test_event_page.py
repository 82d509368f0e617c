"""The raw webhook event page (/webhooks/events/<id>/): what processing made of an event for
every member who may see webhook events, and what FlashFX sent, byte for byte, only for those
who may see raw bodies (compliance and admin)."""

from __future__ import annotations

import hashlib

import pytest
from django.urls import reverse
from staff import make_staff, sign_in

from webhooks.models import InboundEvent

pytestmark = pytest.mark.django_db

BODY = b'{"event":"deposit_refunding","id":"5f1c0ffee0ddba11ab1e0001","status":"REFUNDING"}'


def stored(**fields) -> InboundEvent:
    row = {
        "accepted": True,
        "status": InboundEvent.Status.PROCESSED,
        "request_id": "aa11bb22cc33dd44ee55ff66",
        "event": "deposit_refunding",
        "entity_id": "5f1c0ffee0ddba11ab1e0001",
        "body": BODY,
        "body_sha256": hashlib.sha256(BODY).hexdigest(),
        "body_size": len(BODY),
        "headers": {"flashfx-signature": "c2lnbmF0dXJl", "user-agent": "FlashFX"},
        "outcome": "deposit 5f1c0ffee0ddba11ab1e0001: updated",
        "attempts": 1,
    }
    return InboundEvent.objects.create(**(row | fields))


def test_the_page_shows_headers_the_raw_body_and_the_processing_state(client):
    sign_in(client, make_staff("compliance"))
    event = stored()
    response = client.get(reverse("webhooks:event", args=[event.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert f"Webhook event #{event.pk}: deposit_refunding" in html
    assert "flashfx-signature" in html and "c2lnbmF0dXJl" in html
    assert "{&quot;event&quot;:&quot;deposit_refunding&quot;" in html  # exactly as received
    assert "Processed" in html and "deposit 5f1c0ffee0ddba11ab1e0001: updated" in html
    assert event.body_sha256 in html


def test_a_dead_event_shows_its_last_error(client):
    sign_in(client, make_staff("viewer"))
    event = stored(status=InboundEvent.Status.DEAD, last_error="Traceback: FlashFX unreachable")
    html = client.get(reverse("webhooks:event", args=[event.pk])).content.decode()
    assert "Dead" in html and "Traceback: FlashFX unreachable" in html


def test_a_pruned_body_says_so(client):
    from django.utils import timezone

    sign_in(client, make_staff("admin"))
    event = stored(body=b"", body_pruned_at=timezone.now())
    html = client.get(reverse("webhooks:event", args=[event.pk])).content.decode()
    assert "No body kept." in html and "the body was removed" in html


def test_an_unknown_event_is_404(client):
    sign_in(client, make_staff("viewer"))
    assert client.get(reverse("webhooks:event", args=[999999])).status_code == 404


def test_a_member_without_the_permission_gets_403(client):
    sign_in(client, make_staff(None))
    event = stored()
    assert client.get(reverse("webhooks:event", args=[event.pk])).status_code == 403


def test_an_unproven_requests_page_says_only_its_first_bytes_are_kept(client):
    sign_in(client, make_staff("compliance"))
    event = stored(
        accepted=False,
        status=InboundEvent.Status.QUARANTINED,
        reason=InboundEvent.Reason.MISSING_SIGNATURE,
        body=b"x" * 1024,
        body_size=1_048_576,
    )
    html = client.get(reverse("webhooks:event", args=[event.pk])).content.decode()
    assert "1048576 bytes" in html
    assert "only the first 1024 bytes are kept" in html


@pytest.mark.parametrize("role", ["viewer", "operator", "approver"])
def test_other_roles_see_the_outcome_but_not_the_body_or_headers(client, role):
    sign_in(client, make_staff(role))
    event = stored()
    html = client.get(reverse("webhooks:event", args=[event.pk])).content.decode()
    assert "Processed" in html and "deposit 5f1c0ffee0ddba11ab1e0001: updated" in html
    assert "5f1c0ffee0ddba11ab1e0001" in html and "aa11bb22cc33dd44ee55ff66" in html
    assert "shown only to compliance and admins" in html
    assert "c2lnbmF0dXJl" not in html and "flashfx-signature" not in html  # no headers
    assert "deposit_refunding&quot;" not in html and "REFUNDING" not in html  # no body


def test_only_those_who_may_replay_see_the_dry_run_button(client):
    event = stored(status=InboundEvent.Status.DEAD)
    sign_in(client, make_staff("compliance"))
    assert b"Dry run replay" not in client.get(reverse("webhooks:event", args=[event.pk])).content
    client.logout()
    sign_in(client, make_staff("admin"))
    assert b"Dry run replay" in client.get(reverse("webhooks:event", args=[event.pk])).content


def test_a_quarantined_request_shows_what_was_dropped_from_its_address_that_minute(client):
    from webhooks.models import QuarantineTally

    sign_in(client, make_staff("viewer"))
    event = stored(
        accepted=False,
        status=InboundEvent.Status.QUARANTINED,
        reason=InboundEvent.Reason.BAD_SIGNATURE,
        remote_addr="203.0.113.9",
    )
    QuarantineTally.objects.create(
        remote_addr="203.0.113.9",
        minute=event.received_at.replace(second=0, microsecond=0),
        seen=75,
        kept=60,
    )
    html = client.get(reverse("webhooks:event", args=[event.pk])).content.decode()
    assert "Bad Signature" in html
    assert "75 unproven requests seen, 60 kept, 15 dropped unstored" in html
