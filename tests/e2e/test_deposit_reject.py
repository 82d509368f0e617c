"""Rejecting a deposit in a real browser, through the real path: the sandbox sends its signed
webhooks to the live server, whose receiver hands them to Celery (eager here), so our mirror
follows FlashFX; the refund's task calls the sandbox after the form's transaction commits; the
deposit page polls its refunds section and shows REFUNDING, then REFUNDED, without a reload.
A viewer sees no Reject button and gets 403 posting the form; a large rejection waits for a
second member, signed in in a second browser, and goes out only after their approval.
"""

from __future__ import annotations

import re
import time
from decimal import Decimal

from browser_flashfx import sign_in
from harness import wait_until
from playwright.sync_api import Page, expect
from staff import code, make_staff

from payments.models import Deposit, DepositRefund

SENDER = {"accountName": "Pat Payer", "bsb": "062000", "accountNo": "11112222"}


def confirmed_deposit(sandbox, amount: str) -> Deposit:
    """A deposit arriving at the sandbox, mirrored here by its webhooks until CONFIRMED."""
    created = sandbox.receive_deposit(amount, sender=SENDER, externalReference="INV 2041")
    return wait_until(
        lambda: Deposit.objects.filter(
            flashfx_id=created["id"], flashfx_status="CONFIRMED"
        ).first(),
        timeout=20,
        what="the deposit's webhooks to confirm it in our mirror",
    )


def mark_document(page: Page) -> None:
    page.evaluate("window.__sameDocument = true")


def still_same_document(page: Page) -> bool:
    return page.evaluate("window.__sameDocument === true")


def test_an_operator_rejects_a_deposit_with_the_step_up_code_and_watches_it_refund(
    live_server, flashfx, page, settings, shot
):
    base = live_server.url
    settings.STAFF_STEP_UP_MAX_AGE_SECONDS = 3
    operator = make_staff("operator")
    deposit = confirmed_deposit(flashfx, "250.00")
    device = sign_in(page, base, operator)

    page.goto(f"{base}/deposits/{deposit.flashfx_id}/")
    expect(page.locator("#flashfx-status")).to_have_text("CONFIRMED")
    expect(page.get_by_text("INV 2041")).to_be_visible()
    shot("01-deposit")
    page.get_by_role("link", name="Reject").click()

    expect(page.get_by_role("heading", name=re.compile("Reject deposit"))).to_be_visible()
    expect(page.locator("#refund-payer")).to_have_text("Pat Payer")
    expect(page.locator("#refund-bsb")).to_have_text("062000")
    expect(page.locator("#refund-account")).to_have_text("11112222")
    expect(page.get_by_label("Amount to refund")).to_have_value("250.00")
    page.get_by_label("Reason").select_option(label="Payment not expected")
    shot("02-reject-form")
    page.wait_for_timeout(3100)  # the sign-in code is older than the step-up allows now
    page.get_by_role("button", name="Reject").click()

    # The step-up: a fresh code, then back to the form to repeat the action.
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    assert not DepositRefund.objects.exists()
    shot("03-step-up")
    page.fill("input[name=token]", code(device, steps_ahead=1))
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name=re.compile("Reject deposit"))).to_be_visible()
    page.get_by_label("Reason").select_option(label="Payment not expected")
    page.get_by_role("button", name="Reject").click()

    # Back on the deposit page: the refund went out after commit; FlashFX completes it.
    expect(page).to_have_url(f"{base}/deposits/{deposit.flashfx_id}/")
    mark_document(page)
    status = page.locator("#flashfx-status")
    expect(status).to_have_text("REFUNDING", timeout=10_000)
    shot("04-refunding")
    expect(status).to_have_text("REFUNDED", timeout=20_000)
    expect(page.locator(".refund-completed")).to_be_visible()
    timeline = page.locator("#deposit-timeline")
    expect(timeline).to_contain_text("FlashFX: REFUNDING \u2192 REFUNDED")
    expect(timeline).to_contain_text("Rejection requested")
    shot("05-refunded")
    assert still_same_document(page)  # no reload: the section polled itself

    refund = DepositRefund.objects.get()
    assert (refund.state, refund.amount, refund.attempts) == ("completed", Decimal("250.00"), 1)
    assert Deposit.objects.get(pk=deposit.pk).review_state == "rejected"
    refunding = [
        d
        for d in flashfx.deliveries(entityId=deposit.flashfx_id)
        if d["event"] == "deposit_refunding"
    ]
    assert len(refunding) == 1
    # Once nothing is in flight, the polling stops.
    expect(page.locator("#deposit-refunds")).not_to_have_attribute("hx-trigger", re.compile("."))


def test_a_viewer_sees_no_reject_button_and_gets_403_posting_the_form(
    live_server, flashfx, page, shot
):
    base = live_server.url
    viewer = make_staff("viewer")
    deposit = confirmed_deposit(flashfx, "80.00")
    sign_in(page, base, viewer)
    page.goto(f"{base}/deposits/{deposit.flashfx_id}/")
    expect(page.locator("#flashfx-status")).to_have_text("CONFIRMED")
    expect(page.get_by_role("link", name="Reject")).to_have_count(0)
    shot("01-viewer")

    token = page.locator("input[name=csrfmiddlewaretoken]").first.get_attribute("value")
    url = f"{base}/deposits/{deposit.flashfx_id}/reject/"
    response = page.request.post(
        url,
        form={
            "csrfmiddlewaretoken": token,
            "reason": "not_expected",
            "reason_text": "",
            "amount": "80.00",
        },
        headers={"Referer": url},
    )
    assert response.status == 403
    assert "Your role does not give you this page" in response.text()
    assert not DepositRefund.objects.exists()
    assert flashfx.deposit_status(deposit.flashfx_id) == "CONFIRMED"


def test_a_large_rejection_waits_for_an_approver_and_goes_out_only_after_approval(
    live_server, flashfx, page, browser, watch, settings, shot
):
    base = live_server.url
    settings.DEPOSIT_REFUND_APPROVAL_THRESHOLD = Decimal("100.00")
    operator = make_staff("operator")
    approver = make_staff("approver")
    deposit = confirmed_deposit(flashfx, "150.00")

    sign_in(page, base, operator)
    page.goto(f"{base}/deposits/{deposit.flashfx_id}/reject/")
    page.get_by_label("Reason").select_option(label="Duplicate payment")
    page.get_by_label("In your words").fill("paid twice")
    page.get_by_role("button", name="Reject").click()
    expect(page).to_have_url(f"{base}/deposits/{deposit.flashfx_id}/")
    mark_document(page)
    expect(page.get_by_text("waits for a second member's approval")).to_be_visible()
    shot("01-waiting")
    time.sleep(1.5)  # nothing goes out while it waits
    assert flashfx.deposit_status(deposit.flashfx_id) == "CONFIRMED"

    # The approver, in a browser of their own.
    other = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        second = other.new_page()
        second.on("console", watch.on_console)
        sign_in(second, base, approver)
        second.goto(base + "/approvals/")
        item = second.locator(".approval", has_text=deposit.flashfx_id)
        expect(item).to_contain_text("Refund AUD 150.00")
        expect(item).to_contain_text("Duplicate payment: paid twice")
        shot("02-approvals", second)
        item.get_by_role("button", name="Approve").click()
        expect(second.get_by_text(re.compile(r"^Approved: Refund AUD 150\.00"))).to_be_visible()
        shot("03-approved", second)
    finally:
        other.close()

    # The operator's page, never reloaded, follows the refund to the end.
    status = page.locator("#flashfx-status")
    expect(status).to_have_text("REFUNDING", timeout=10_000)
    expect(status).to_have_text("REFUNDED", timeout=20_000)
    assert still_same_document(page)
    shot("04-refunded")
    refund = DepositRefund.objects.get()
    assert refund.state == "completed" and refund.approval.decided_by == approver
