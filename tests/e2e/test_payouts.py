"""Payouts in a real browser, through the real path: an operator fills in the form and submits
it for approval and cannot approve it; an approver, in a browser of their own, approves it
with the step-up code; the worker's task (eager here) sends it to the sandbox after the
approval commits; the sandbox's signed webhooks reach the live server and move our mirror; the
operator's page, never reloaded, shows each step up to CONFIRMED. A FAIL_ACC payout, approved
from "Waiting for my approval", ends REFUNDED with its fee shown as kept.
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from browser_flashfx import sign_in
from django.utils import timezone
from playwright.sync_api import Page, expect
from staff import code, make_staff

from mirrors.client import flashfx_client
from mirrors.registry import registry
from parties.models import Recipient, Sender
from parties.services.payee import payee_check_run
from payments.models import Payout
from payments.services import payouts

RECIPIENT = {
    "accountIdType": "BSB",
    "currency": "AUD",
    "bsb": "062000",
    "accountNo": "12345678",
    "firstName": "Mia",
    "lastName": "Ng",
}
SENDER = {
    "companyName": "Demo Company Pty Ltd",
    "address": {"street": "1 Martin Place", "suburb": "Sydney", "country": "AU"},
}


@pytest.fixture
def parties(flashfx):
    """A recipient and a sender at FlashFX, mirrored here (as sync would), and money."""
    deposit = flashfx.receive_deposit("50000.00")
    assert flashfx.advance("deposits", deposit["id"], "CONFIRMED").status_code == 200
    recipient = flashfx_client().create_recipient(RECIPIENT)
    sender = flashfx_client().create_sender(SENDER)
    now = timezone.now()
    registry.get("recipients").apply(recipient, observed_at=now, source="sync")
    registry.get("senders").apply(sender, observed_at=now, source="sync")
    mirrored = Recipient.objects.get(flashfx_id=recipient.id)
    payee_check_run(recipient=mirrored)  # as the parties pages do on creation
    return mirrored, Sender.objects.get(flashfx_id=sender.id)


def mark_document(page: Page) -> None:
    page.evaluate("window.__sameDocument = true")


def still_same_document(page: Page) -> bool:
    return page.evaluate("window.__sameDocument === true")


def test_an_operator_proposes_an_approver_approves_with_the_step_up_and_it_reaches_confirmed(
    live_server, flashfx, parties, page, browser, watch, settings, shot
):
    base = live_server.url
    operator = make_staff("operator")
    approver = make_staff("approver")

    sign_in(page, base, operator)
    page.goto(base + "/payouts/")
    page.get_by_role("link", name="New payout").click()
    expect(page.get_by_role("heading", name="New payout")).to_be_visible()
    expect(page.locator("#cleared-balance")).to_contain_text("AUD 50,000.00")
    # Just created at FlashFX: its bank details are new, and the choice says so.
    page.get_by_label("Recipient").select_option(
        label="Mia Ng \u2014 BSB 062000 account 12345678 (new bank details)"
    )
    page.get_by_label("Amount").fill("1250.00")
    reference = page.get_by_label("Reference")
    reference.fill("INV 1042 and some more")
    expect(page.locator("#reference-count")).to_have_text("22 of 18 characters: 4 too many")
    reference.fill("INV 1042")
    expect(page.locator("#reference-count")).to_have_text("8 of 18 characters")
    page.get_by_label("Sender").select_option(label="Demo Company Pty Ltd")
    page.get_by_label("Reason").select_option(label="Services")
    shot("01-new-payout")
    page.get_by_role("button", name="Submit for approval").click()

    payout = Payout.objects.get()
    expect(page).to_have_url(f"{base}/payouts/{payout.code}/")
    expect(page.locator("#payout-state")).to_have_text("Awaiting approval")
    expect(page.locator("#payout-approvals")).to_contain_text("0 of 1")
    # The maker sees no Approve, and a POST of theirs is refused.
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    url = f"{base}/payouts/{payout.code}/approve/"
    response = page.request.post(url, form={"csrfmiddlewaretoken": token}, headers={"Referer": url})
    assert response.status == 403
    assert Payout.objects.get().state == "awaiting_approval"
    shot("02-awaiting-approval")
    mark_document(page)

    # The approver, in a browser of their own; their code is older than the step-up allows.
    settings.STAFF_STEP_UP_MAX_AGE_SECONDS = 3
    other = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        second = other.new_page()
        second.on("console", watch.on_console)
        device = sign_in(second, base, approver)
        second.goto(f"{base}/payouts/{payout.code}/")
        expect(second.locator("#payout-amount")).to_have_text("AUD 1,250.00")
        expect(second.locator("#payout-account")).to_have_text("12345678")
        # What the approver weighs: new bank details, and the bank's answer to the name.
        expect(second.locator("#recipient-cooling")).to_have_text(
            "new recipient / bank details changed"
        )
        expect(second.locator("#payout-payee-check")).to_contain_text("MATCH")
        second.wait_for_timeout(3100)
        second.get_by_role("button", name="Approve").click()
        expect(second.get_by_role("heading", name="Confirm it is you")).to_be_visible()
        assert Payout.objects.get().state == "awaiting_approval"
        shot("03-step-up", second)
        second.fill("input[name=token]", code(device, steps_ahead=1))
        second.get_by_role("button", name="Confirm").click()
        expect(second).to_have_url(f"{base}/payouts/{payout.code}/")
        second.get_by_role("button", name="Approve").click()
        expect(second.get_by_text(re.compile(r"^Approved: payout PO-"))).to_be_visible()
        shot("04-approved", second)
    finally:
        other.close()

    # The operator's page, never reloaded, follows it to CONFIRMED.
    expect(page.locator("#payout-state")).to_have_text("Submitted", timeout=10_000)
    status = page.locator("#flashfx-status")
    expect(status).to_have_text("PENDING", timeout=15_000)
    shot("05-pending")
    expect(status).to_have_text("CONFIRMED", timeout=20_000)
    timeline = page.locator("#payout-timeline")
    expect(timeline).to_contain_text("Approved")
    expect(timeline).to_contain_text("Submitting")
    expect(timeline).to_contain_text("FlashFX: PENDING \u2192 CONFIRMED")
    shot("06-confirmed")
    assert still_same_document(page)

    payout = Payout.objects.get()
    assert payout.approval.decided_by == approver
    assert len(flashfx_client().withdrawals(externalId=payout.code)) == 1
    assert payout.withdrawal.amount == Decimal("1250.00")


def test_a_fail_acc_payout_approved_from_waiting_ends_refunded_with_the_fee_kept(
    live_server, flashfx, parties, page, shot
):
    base = live_server.url
    recipient, sender = parties
    payout = payouts.payout_create(
        by=make_staff("operator"),
        recipient=recipient,
        sender=sender,
        amount=Decimal("75.00"),
        reference="FAIL_ACC test",
        reason="SERVICES",
    )
    sign_in(page, base, make_staff("approver"))
    page.goto(base + "/payouts/")
    page.get_by_role("link", name="Waiting for my approval").click()
    expect(page.get_by_role("heading", name="Waiting for my approval")).to_be_visible()
    page.get_by_label(f"Select {payout.code}").check()
    shot("01-waiting")
    page.get_by_role("button", name="Approve selected").click()
    expect(page.get_by_text(f"Approved 1: {payout.code}.")).to_be_visible()
    expect(page.get_by_text("Nothing waits for your approval.")).to_be_visible()

    page.goto(f"{base}/payouts/{payout.code}/")
    mark_document(page)
    status = page.locator("#flashfx-status")
    expect(status).to_have_text("REFUNDED", timeout=30_000)
    problem = page.locator(".payout-problem")
    expect(problem).to_contain_text("FlashFX: REFUNDED")
    expect(page.locator("#fee-kept")).to_contain_text("FlashFX kept the fee of AUD 1.00")
    expect(page.locator("#payout-fee")).to_have_text("AUD 1.00 (kept)")
    expect(page.locator("#payout-timeline")).to_contain_text("FlashFX: FAILED \u2192 REFUNDED")
    shot("02-refunded")
    assert still_same_document(page)
    # Once FlashFX's status is final, the polling stops.
    expect(page.locator("#payout-status")).not_to_have_attribute("hx-trigger", re.compile("."))


def test_an_edit_after_the_first_of_two_approvals_voids_it_and_asks_again(
    live_server, flashfx, parties, page, shot
):
    base = live_server.url
    recipient, sender = parties
    operator = make_staff("operator")
    payout = payouts.payout_create(
        by=operator,
        recipient=recipient,
        sender=sender,
        amount=Decimal("20000.00"),
        reference="INV 77",
        reason="GOODS",
    )
    payouts.payout_approve(payout=payout, by=make_staff("approver", "alice"))  # 1 of 2

    sign_in(page, base, operator)
    page.goto(f"{base}/payouts/{payout.code}/")
    expect(page.locator("#payout-approvals")).to_contain_text("1 of 2: alice")
    page.get_by_role("link", name="Change").click()
    expect(page.get_by_role("heading", name=f"Change payout {payout.code}")).to_be_visible()
    expect(page.get_by_label("Amount")).to_have_value("20000.00")
    page.get_by_label("Amount").fill("20500.00")
    shot("01-change")
    page.get_by_role("button", name="Save and ask for approval again").click()

    expect(page).to_have_url(f"{base}/payouts/{payout.code}/")
    expect(page.get_by_text(f"Payout {payout.code} changed")).to_be_visible()
    expect(page.locator("#payout-amount")).to_have_text("AUD 20,500.00")
    expect(page.locator("#payout-approvals")).to_contain_text("0 of 2")
    expect(page.locator("#payout-timeline")).to_contain_text("approvals so far voided")
    shot("02-asked-again")
    payout.refresh_from_db()
    assert payout.state == "awaiting_approval" and payout.approval.signatures.count() == 0
