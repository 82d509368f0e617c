"""International payments in a real browser, through the real path: an operator fills in the
form, sees the live quote follow the amount, and submits the payment with it; they cannot
approve it. An approver, in a browser of their own, sees the maker's quote, a fresh one and the
difference, and approves with the step-up code; the worker's task (eager here) sends it to the
sandbox after the approval commits; the sandbox's signed webhooks (currency_converted, then
payment_complete) reach the live server and move our mirror; the operator's page, never
reloaded, follows it to CLOSED with the amounts as FlashFX settled them.
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
from payments.models import PaymentOrder

RECIPIENT = {
    "accountIdType": "IBAN",
    "currency": "GBP",
    "iban": "GB29NWBK60161331926819",
    "bic": "NWBKGB2L",
    "firstName": "Oliver",
    "lastName": "Bennett",
}
SENDER = {
    "companyName": "Demo Company Pty Ltd",
    "address": {"street": "1 Martin Place", "suburb": "Sydney", "country": "AU"},
}
CHOICE = (
    "Oliver Bennett \u2014 IBAN GB29NWBK60161331926819 BIC NWBKGB2L (GBP, GB) (new bank details)"
)


@pytest.fixture
def parties(flashfx):
    """A recipient abroad and a sender at FlashFX, mirrored here (as sync would), and money."""
    deposit = flashfx.receive_deposit("50000.00")
    assert flashfx.advance("deposits", deposit["id"], "CONFIRMED").status_code == 200
    recipient = flashfx_client().create_recipient(RECIPIENT)
    sender = flashfx_client().create_sender(SENDER)
    now = timezone.now()
    registry.get("recipients").apply(recipient, observed_at=now, source="sync")
    registry.get("senders").apply(sender, observed_at=now, source="sync")
    return Recipient.objects.get(flashfx_id=recipient.id), Sender.objects.get(flashfx_id=sender.id)


def test_a_payment_with_its_quote_is_created_approved_and_followed_to_closed(
    live_server, flashfx, parties, page: Page, browser, watch, settings, shot
):
    base = live_server.url
    operator = make_staff("operator")
    approver = make_staff("approver")

    sign_in(page, base, operator)
    page.goto(base + "/payments/")
    page.get_by_role("link", name="New payment").click()
    expect(page.get_by_role("heading", name="New payment")).to_be_visible()
    expect(page.locator("#quote-empty")).to_be_visible()
    page.wait_for_load_state("load")  # htmx (deferred) listens from here on
    page.get_by_label("Sender").select_option(label="Demo Company Pty Ltd")
    page.get_by_label("Recipient abroad").select_option(label=CHOICE)
    page.get_by_label("Amount", exact=True).fill("2000.00")
    # The live quote follows the amount as it is typed, and counts down how long it holds.
    expect(page.locator("#quote-from-amount")).to_have_text("AUD 2,000.00")
    page.get_by_label("Amount", exact=True).fill("1000.00")
    expect(page.locator("#quote-from-amount")).to_have_text("AUD 1,000.00")
    expect(page.locator("#quote-rate")).to_contain_text("1 AUD = ")
    expect(page.locator("#quote-to-amount")).to_have_text(re.compile(r"^GBP \d+\.\d\d$"))
    expect(page.locator("#quote-countdown")).to_have_text(re.compile(r"^(1[01]\d|120|\d{1,2}) s$"))
    shown_to = page.locator("#quote-to-amount").inner_text()
    page.get_by_label("Reason").select_option(label="Services")
    page.get_by_label("Source of funds").select_option(label="Business funds")
    page.get_by_label("Reference").fill("Invoice 42")
    shot("01-new-payment-with-quote")
    page.get_by_role("button", name="Submit for approval").click()

    order = PaymentOrder.objects.get()
    expect(page).to_have_url(f"{base}/payments/{order.code}/")
    expect(page.locator("#payment-state")).to_have_text("Awaiting approval")
    expect(page.locator("#maker-to-amount")).to_have_text(shown_to)
    expect(page.get_by_role("button", name="Withdraw")).to_be_visible()
    # The maker sees no Approve, and a POST of theirs is refused.
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    url = f"{base}/payments/{order.code}/approve/"
    response = page.request.post(url, form={"csrfmiddlewaretoken": token}, headers={"Referer": url})
    assert response.status == 403
    assert PaymentOrder.objects.get().state == "awaiting_approval"
    shot("02-awaiting-approval")
    page.evaluate("window.__sameDocument = true")

    # The approver, in a browser of their own; their code is older than the step-up allows.
    settings.STAFF_STEP_UP_MAX_AGE_SECONDS = 3
    other = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        second = other.new_page()
        second.on("console", watch.on_console)
        device = sign_in(second, base, approver)
        second.goto(f"{base}/payments/{order.code}/")
        expect(second.locator("#payment-amount")).to_have_text("AUD 1,000.00")
        expect(second.locator("#payment-bank")).to_contain_text("IBAN GB29NWBK60161331926819")
        expect(second.locator("#maker-to-amount")).to_have_text(shown_to)
        expect(second.locator("#fresh-rate")).to_contain_text("1 AUD = ")
        expect(second.locator("#difference-to")).to_contain_text("GBP")
        shot("03-approver-fresh-quote", second)
        second.wait_for_timeout(3100)
        second.get_by_role("button", name="Approve").click()
        expect(second.get_by_role("heading", name="Confirm it is you")).to_be_visible()
        assert PaymentOrder.objects.get().state == "awaiting_approval"
        second.fill("input[name=token]", code(device, steps_ahead=1))
        second.get_by_role("button", name="Confirm").click()
        expect(second).to_have_url(f"{base}/payments/{order.code}/")
        second.get_by_role("button", name="Approve").click()
        expect(second.get_by_text(re.compile(r"^Approved: payment "))).to_be_visible()
        shot("04-approved", second)
    finally:
        other.close()

    # The operator's page, never reloaded, follows it to CLOSED.
    expect(page.locator("#payment-state")).to_have_text("Submitted", timeout=10_000)
    status = page.locator("#flashfx-status")
    expect(status).to_have_text("OPEN", timeout=15_000)
    expect(page.locator("#settled-from")).to_have_text("AUD 1,000.00")
    shot("05-open")
    expect(status).to_have_text("CLOSED", timeout=30_000)
    expect(page.locator("#settled-to")).to_have_text(re.compile(r"^GBP \d+\.\d\d$"))
    expect(page.locator("#payment-timeline")).to_contain_text("CLOSED")
    expect(page.get_by_role("button", name="Withdraw")).to_have_count(0)  # gone once approved
    shot("06-closed")
    assert page.evaluate("window.__sameDocument === true")
    # FlashFX's status is final: the polling stops.
    expect(page.locator("#payment-status")).not_to_have_attribute("hx-trigger", re.compile("."))

    order = PaymentOrder.objects.get()
    assert order.approval.decided_by == approver
    assert len(flashfx_client().payments(externalId=order.code)) == 1
    assert order.payment.from_amount == Decimal("1000.00")
