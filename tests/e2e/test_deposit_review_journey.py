"""An operator's day with one deposit, end to end, as issue 10 asks: the queue is open when a
deposit is created in the sandbox; its signed webhooks reach the live server and Celery (eager
here) mirrors it; the open queue shows "1 new" without a reload; the operator filters and
searches down to it, opens it, rejects it with the step-up code and watches FlashFX move it to
REFUNDING and then REFUNDED, on the deposit page and back in the queue.
"""

from __future__ import annotations

import re

import pytest
from browser_flashfx import sign_in
from harness import wait_until
from playwright.sync_api import Page, expect
from staff import code, make_staff
from test_deposit_reject import SENDER

from payments.models import Deposit, DepositRefund

pytestmark = pytest.mark.django_db(transaction=True)

REFERENCE = "JOURNEY-7731"


def test_an_operator_sees_a_deposit_arrive_finds_it_rejects_it_and_sees_it_refunded(
    live_server,
    flashfx,  # noqa: F811 (the fixture imported above: the sandbox as FlashFX)
    page: Page,
    settings,
    watch,
    shot,
):
    base = live_server.url
    settings.DEPOSIT_QUEUE_POLL_SECONDS = 1
    settings.STAFF_STEP_UP_MAX_AGE_SECONDS = 3
    operator = make_staff("operator", "olivia")
    device = sign_in(page, base, operator)

    page.goto(base + "/deposits/")
    expect(page.get_by_role("heading", name="Deposits")).to_be_visible()
    rows = page.locator("table.deposit-queue tbody tr")
    expect(rows).to_have_count(0)

    # FlashFX receives a payment; nobody reloads the queue.
    created = flashfx.receive_deposit("420.00", sender=SENDER, externalReference=REFERENCE)
    marker = page.get_by_role("link", name="1 new")
    expect(marker).to_be_visible(timeout=15_000)
    expect(rows).to_have_count(0)  # the list never changes under the reader
    shot("01-one-new")
    marker.click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(REFERENCE)

    # Once FlashFX confirms it (its next webhook), filter and search down to it.
    wait_until(
        lambda: Deposit.objects.filter(
            flashfx_id=created["id"], flashfx_status="CONFIRMED"
        ).exists(),
        timeout=20,
        what="FlashFX to confirm the deposit",
    )
    page.get_by_role("search", name="Filter deposits").get_by_label("FlashFX status").select_option(
        "CONFIRMED"
    )
    page.get_by_role("search", name="Filter deposits").get_by_label("Search").fill("journey-77")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(
        re.compile(r"status=CONFIRMED.*q=journey-77|q=journey-77.*status=CONFIRMED")
    )
    expect(rows).to_have_count(1)
    shot("02-filtered")

    # Open it and reject it; the step-up asks for a fresh code first.
    rows.filter(has_text=REFERENCE).get_by_role("link").first.click()
    expect(page).to_have_url(f"{base}/deposits/{created['id']}/")
    expect(page.locator("#flashfx-status")).to_have_text("CONFIRMED")
    page.get_by_role("link", name="Reject").click()
    page.get_by_label("Reason").select_option(label="Payment not expected")
    page.wait_for_timeout(3100)  # the sign-in code is now older than the step-up allows
    page.get_by_role("button", name="Reject").click()
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    assert not DepositRefund.objects.exists()
    page.fill("input[name=token]", code(device, steps_ahead=1))
    page.get_by_role("button", name="Confirm").click()
    page.get_by_label("Reason").select_option(label="Payment not expected")
    page.get_by_role("button", name="Reject").click()

    expect(page).to_have_url(f"{base}/deposits/{created['id']}/")
    status = page.locator("#flashfx-status")
    expect(status).to_have_text("REFUNDING", timeout=10_000)
    shot("03-refunding")
    expect(status).to_have_text("REFUNDED", timeout=20_000)
    shot("04-refunded")
    refund = DepositRefund.objects.get()
    assert refund.state == DepositRefund.State.COMPLETED
    assert refund.attempts == 1

    # Back in the queue it reads as FlashFX and our review both say.
    page.goto(base + f"/deposits/?q={REFERENCE}")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("REFUNDED")
    expect(rows.first).to_contain_text("Rejected")
    watch.assert_clean(page)
