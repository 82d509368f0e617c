"""Webhook events in a real browser: FlashFX's webhook for a new deposit reaches the live
server, signed, while FlashFX's API cannot be reached, so every attempt to process it fails
and it ends a dead letter (the worker's task runs eagerly here, retries and all). FlashFX is
back; an admin filters the list to dead events, opens the one, runs a dry run that changes
nothing, replays it for real after the step-up code, and sees it processed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import socket

import httpx
import pytest
from browser_flashfx import sign_in
from harness import close_app_client
from playwright.sync_api import expect
from staff import code, make_staff

from backoffice.models import AuditEvent
from payments.models import Deposit
from webhooks.models import InboundEvent
from webhooks.replay import REPLAYED

Status = InboundEvent.Status


def deliver(base: str, secret: str, body: bytes, request_id: str) -> None:
    """A delivery as FlashFX makes it (docs/flashfx.md §4.4), to the live server's endpoint."""
    mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    response = httpx.post(
        base + "/webhooks/flashfx/",
        content=body,
        headers={
            "content-type": "application/json",
            "user-agent": "FlashFX",
            "flashfx-request-id": request_id,
            "flashfx-signature": base64.b64encode(mac).decode(),
        },
        timeout=60,
    )
    assert response.status_code == 200, response.text


@pytest.fixture
def dead_deposit_event(live_server, sandbox, settings):
    """The sandbox's deposit_initiated webhook, delivered while FlashFX's API was unreachable
    (a port nobody listens on): dead after its retries. Then FlashFX is back."""
    sandbox.configure(step_delay_seconds=3600, login_interval_seconds=0)  # nothing moves alone
    deposit = sandbox.receive_deposit("321.09")
    [received] = sandbox.receiver.wait_for_events(deposit["id"], ["deposit_initiated"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{s.getsockname()[1]}/"
    close_app_client()
    settings.FLASHFX_API_URL = nowhere
    settings.FLASHFX_QUERY_RETRY_BUDGET_SECONDS = 0.2
    settings.CELERY_TASK_ALWAYS_EAGER = True
    try:
        secret = settings.FLASHFX_WEBHOOK_SECRET
        deliver(live_server.url, secret, received.body, received.headers["flashfx-request-id"])
        # And a test event, processed (ignored) at once: the filter leaves it out.
        deliver(live_server.url, secret, b'{"event":"test","id":"t-1"}', "e2e-test-event-1")
        event = InboundEvent.objects.get(entity_id=deposit["id"])
        # Dead after its retries: 7 attempts with the per-event hand-off, 8 with Redis's
        # coalesced one (the drain's pass, then the event's own task and its 6 retries).
        assert event.status == Status.DEAD and event.attempts in (7, 8)
        close_app_client()
        settings.FLASHFX_API_URL = sandbox.url  # FlashFX is back
        yield deposit, event
    finally:
        settings.CELERY_TASK_ALWAYS_EAGER = False
        close_app_client()


def test_an_admin_filters_to_dead_events_dry_runs_and_replays_one_for_real(
    live_server, dead_deposit_event, page, settings, shot
):
    deposit, event = dead_deposit_event
    base = live_server.url
    settings.STAFF_STEP_UP_MAX_AGE_SECONDS = 3
    device = sign_in(page, base, make_staff("admin"))

    page.goto(base + "/webhooks/events/")
    expect(page.get_by_role("heading", name="Webhook events")).to_be_visible()
    rows = page.locator("table.webhook-events tbody tr")
    expect(rows).to_have_count(2)
    # In the filter form: the export panel's column chooser has a "Status" box too.
    filters = page.get_by_role("search", name="Filter webhook events")
    filters.get_by_label("Status").select_option(label="Dead")
    filters.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/webhooks/events/\?status=dead"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("deposit_initiated")
    expect(rows.first).to_contain_text(deposit["id"])
    expect(rows.first).to_contain_text("Dead")
    shot("01-dead-events")

    rows.first.get_by_role("link").click()
    expect(
        page.get_by_role("heading", name=f"Webhook event #{event.pk}: deposit_initiated")
    ).to_be_visible()
    expect(page.locator("#event-status")).to_contain_text("Dead")
    expect(page.locator("#event-body")).to_contain_text(deposit["id"])  # admins see the body

    page.get_by_role("button", name="Dry run replay").click()
    expect(page.get_by_role("heading", name="Replay: dry run")).to_be_visible()
    expect(page.locator(".replay-outcome")).to_contain_text(
        f"would be: fetched from FlashFX first; Deposit {deposit['id']} "
    )
    assert not Deposit.objects.exists()  # a dry run changes nothing
    assert InboundEvent.objects.get(pk=event.pk).status == Status.DEAD
    shot("02-dry-run")

    # The code entered at sign-in is older than the step-up allows by now.
    page.wait_for_timeout(3100)
    page.get_by_role("button", name="Replay for real").click()
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    assert InboundEvent.objects.get(pk=event.pk).status == Status.DEAD
    page.fill("input[name=token]", code(device, steps_ahead=1))
    page.get_by_role("button", name="Confirm").click()
    expect(page).to_have_url(f"{base}/webhooks/events/{event.pk}/")

    page.get_by_role("button", name="Dry run replay").click()
    page.get_by_role("button", name="Replay for real").click()
    expect(page).to_have_url(f"{base}/webhooks/events/{event.pk}/")
    expect(
        page.get_by_text(re.compile(rf"^Replayed #{event.pk} deposit_initiated: "))
    ).to_be_visible()
    expect(page.locator("#event-status")).to_contain_text("Processed")
    expect(page.locator("#event-attempts")).to_have_text(str(event.attempts + 1))
    shot("03-processed")

    assert Deposit.objects.get().flashfx_id == deposit["id"]
    [audit_row] = AuditEvent.objects.filter(action=REPLAYED)
    assert audit_row.object_id == str(event.pk) and audit_row.after["status"] == "processed"
