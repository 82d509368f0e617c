"""Replay from the webhook event pages (/webhooks/events/replay/), for admins only: a dry run
first, which changes nothing; then "Replay for real" with a fresh step-up code, which applies
each event once and writes one audit row per event with its outcome. POST only, with CSRF."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse
from harness import close_app_client
from processing_support import app_pointed_at_sandbox, dead_while_flashfx_was_down, store_body
from staff import make_staff, sign_in

from backoffice.models import AuditEvent
from payments.models import Withdrawal
from webhooks.models import InboundEvent
from webhooks.replay import REPLAYED

pytestmark = pytest.mark.django_db

Status = InboundEvent.Status
URL = reverse("webhooks:events-replay")
STALE = 3600.0  # seconds since the code was entered: older than any step-up allows


@pytest.fixture
def dead(sandbox, settings):
    """A real payout's three webhooks, dead while FlashFX was away; FlashFX is back now."""
    final, events = dead_while_flashfx_was_down(sandbox, settings)
    close_app_client()
    with app_pointed_at_sandbox(sandbox, settings):
        yield final, events


def snapshot() -> list[tuple]:
    return list(
        InboundEvent.objects.order_by("id").values_list(
            "id", "status", "attempts", "last_error", "outcome", "processed_at"
        )
    )


def dry_run(client, events, *, next_url: str = "/webhooks/events/?status=dead"):
    return client.post(URL, {"event": [e.pk for e in events], "mode": "dry-run", "next": next_url})


def token_of(response) -> str:
    match = re.search(r'name="token" value="([^"]+)"', response.content.decode())
    assert match, "the dry run offers no real replay"
    return match.group(1)


def for_real(
    client, events, token: str, *, next_url: str = "/webhooks/events/?status=dead", follow=False
):
    data = {"event": [e.pk for e in events], "mode": "apply", "token": token, "next": next_url}
    return client.post(URL, data, follow=follow)


def said(response) -> list[str]:
    """The messages shown on the page a followed redirect ended on."""
    return [str(m) for m in response.context["messages"]]


def replay_audits() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=REPLAYED).order_by("id"))


def test_a_dry_run_shows_what_would_change_and_changes_nothing(client, dead):
    final, events = dead
    sign_in(client, make_staff("admin"))
    before = snapshot()

    response = dry_run(client, events)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count(f"would be: fetched from FlashFX first; Withdrawal {final.id} ") == 3
    assert "Replay for real" in html
    assert snapshot() == before
    assert not Withdrawal.objects.exists()
    assert replay_audits() == []


def test_a_real_replay_applies_each_event_once_and_audits_it(client, dead):
    final, events = dead
    admin = make_staff("admin")
    sign_in(client, admin)
    token = token_of(dry_run(client, events))

    response = for_real(client, events, token, follow=True)

    assert response.redirect_chain == [("/webhooks/events/?status=dead", 302)]
    for event in InboundEvent.objects.filter(pk__in=[e.pk for e in events]):
        assert (event.status, event.attempts) == (Status.PROCESSED, 2)
    withdrawal = Withdrawal.objects.get()
    assert withdrawal.flashfx_id == final.id and withdrawal.flashfx_status == final.status

    audits = replay_audits()
    assert [a.object_id for a in audits] == [str(e.pk) for e in events]
    for audit_row, event in zip(audits, events, strict=True):
        assert audit_row.actor == admin.username
        assert audit_row.object_type == "webhooks.inboundevent"
        assert audit_row.before == {"status": "dead", "attempts": 1}
        assert audit_row.after == {"status": "processed", "attempts": 2}
        assert audit_row.details["event_id"] == event.pk
        assert audit_row.details["request_id"] == event.request_id
        assert audit_row.details["selection"] == [e.pk for e in events]
        assert f"Withdrawal {final.id}" in audit_row.details["outcome"]
    messages = said(response)
    assert len(messages) == 3 and all(m.startswith("Replayed #") for m in messages)

    # Submitted twice (a double click): the events moved since the dry run, nothing replays.
    state = Withdrawal.objects.values().get()
    again = for_real(client, events, token, follow=True)
    assert Withdrawal.objects.values().get() == state
    assert {e.attempts for e in InboundEvent.objects.filter(pk__in=[e.pk for e in events])} == {2}
    assert len(replay_audits()) == 3
    skipped = said(again)
    assert len(skipped) == 3 and all(
        "status changed since the dry run (dead -> processed)" in m for m in skipped
    )


def test_a_real_replay_needs_a_fresh_step_up_code(client, dead):
    _, events = dead
    sign_in(client, make_staff("admin"), otp_age=STALE)
    dry = dry_run(client, events, next_url=f"/webhooks/events/{events[0].pk}/")
    assert "You will be asked for your authenticator code first." in dry.content.decode()
    before = snapshot()

    response = for_real(client, events, token_of(dry), next_url=f"/webhooks/events/{events[0].pk}/")

    assert response.status_code == 302
    assert response["Location"] == (f"{reverse('step-up')}?next=/webhooks/events/{events[0].pk}/")
    assert snapshot() == before and not Withdrawal.objects.exists()
    assert replay_audits() == []


def test_a_real_replay_needs_a_dry_run_of_the_same_events_first(client, dead):
    _, events = dead
    sign_in(client, make_staff("admin"))
    token = token_of(dry_run(client, events[:1]))
    before = snapshot()

    no_token = for_real(client, events, "", follow=True)
    other_events = for_real(client, events, token, follow=True)  # a dry run of one of them
    tampered = for_real(client, events[:1], token[:-2] + "xx", follow=True)

    for response in (no_token, other_events, tampered):
        assert said(response) == ["Run a dry run of these events first, then replay them."]
    assert snapshot() == before and replay_audits() == []


def test_what_replay_skips_is_shown_with_the_reason_and_offers_no_real_replay(client):
    sign_in(client, make_staff("admin"))
    quarantined = store_body(
        b'{"event":"test","id":"1"}',
        request_id="q-1",
        accepted=False,
        status=Status.QUARANTINED,
        reason="bad_signature",
    )
    html = dry_run(client, [quarantined]).content.decode()
    assert "skipped: quarantined (bad_signature), never processed" in html
    assert "Replay for real" not in html and "Nothing here can be replayed." in html


@pytest.mark.parametrize("role", ["viewer", "operator", "approver", "compliance"])
def test_members_who_may_not_replay_are_refused(client, role):
    sign_in(client, make_staff(role))
    event = store_body(b'{"event":"test","id":"1"}', request_id="d-1", status=Status.DEAD)
    before = snapshot()
    assert dry_run(client, [event]).status_code == 403
    assert for_real(client, [event], "anything").status_code == 403
    assert snapshot() == before and replay_audits() == []


def test_replay_is_post_only_and_checks_csrf():
    admin = make_staff("admin")
    strict = Client(enforce_csrf_checks=True)
    sign_in(strict, admin)
    event = store_body(b'{"event":"test","id":"1"}', request_id="d-1", status=Status.DEAD)
    assert strict.get(URL).status_code == 405
    assert strict.post(URL, {"event": [event.pk], "mode": "dry-run"}).status_code == 403
    assert InboundEvent.objects.get(pk=event.pk).attempts == 0


def test_nothing_selected_says_so(client):
    sign_in(client, make_staff("admin"))
    response = client.post(URL, {"mode": "dry-run", "next": "https://evil.example/"}, follow=True)
    assert response.redirect_chain == [(reverse("webhooks:events"), 302)]
    assert said(response) == ["Select the events to replay."]
