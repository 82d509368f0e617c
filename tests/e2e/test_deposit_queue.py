"""The deposit queue in a browser: a deposit created in the sandbox and mirrored from its
webhook appears as "1 new" without a reload; filters, search, bulk accept; with JavaScript off
the same form and the Next/Previous links work; a viewer sees no "Accept selected".
"""

from __future__ import annotations

import re
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from playwright.sync_api import Browser, BrowserContext, Page, expect

# The helpers of the webhook and queue tests live beside those tests (pytest puts a test's own
# folder on sys.path, not its neighbours').
TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS / "webhooks"), str(TESTS / "payments")]

from harness import wait_until  # noqa: E402
from processing_support import app_pointed_at_sandbox, process, store  # noqa: E402
from queue_support import make_deposit  # noqa: E402
from staff import make_staff, sign_in  # noqa: E402

from payments.models import Deposit  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)


def signed_in(context: BrowserContext, base_url: str, user) -> None:
    """The browser holds a session that is past the password and the second factor."""
    client = Client()
    sign_in(client, user)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    context.add_cookies(
        [{"name": cookie.key, "value": cookie.value, "url": base_url, "httpOnly": True}]
    )


@pytest.fixture
def app_at_sandbox(sandbox, settings):
    with app_pointed_at_sandbox(sandbox, settings):
        yield sandbox


def mirror_from_webhook(sandbox, deposit_id: str) -> None:
    """The way a new deposit reaches our mirror: FlashFX's deposit_initiated webhook, stored as
    the receiver stores it and processed by the worker's service."""
    first = wait_until(
        lambda: sandbox.receiver.for_entity(deposit_id), what="the deposit's first webhook"
    )[0]
    process([store(first)])
    assert Deposit.objects.filter(flashfx_id=deposit_id).exists()


def test_operator_sees_a_new_deposit_arrive_then_filters_searches_and_accepts(
    live_server, page: Page, context, watch, shot, app_at_sandbox, settings
):
    settings.DEPOSIT_QUEUE_POLL_SECONDS = 1
    sandbox = app_at_sandbox
    operator = make_staff("operator", "olivia")
    make_deposit(flashfx_status="CONFIRMED", external_reference="OLD-1")
    signed_in(context, live_server.url, operator)

    page.goto(live_server.url + "/deposits/")
    expect(page.get_by_role("heading", name="Deposits")).to_be_visible()
    expect(page.locator("table.deposit-queue tbody tr")).to_have_count(1)

    arrived = sandbox.receive_deposit("321.00", externalReference="E2E-ARRIVAL-7")
    mirror_from_webhook(sandbox, arrived["id"])
    marker = page.get_by_role("link", name="1 new")
    expect(marker).to_be_visible(timeout=10_000)
    expect(page.locator("table.deposit-queue tbody tr")).to_have_count(1)  # never jumps
    shot("01-one-new")
    marker.click()
    expect(page.locator("table.deposit-queue tbody tr")).to_have_count(2)
    expect(page.get_by_text("E2E-ARRIVAL-7")).to_be_visible()

    status = Deposit.objects.get(flashfx_id=arrived["id"]).flashfx_status
    page.get_by_role("search", name="Filter deposits").get_by_label("FlashFX status").select_option(
        status
    )
    page.get_by_role("search", name="Filter deposits").get_by_label("Search").fill("e2e-arrival")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"q=e2e-arrival"))
    expect(page.locator("table.deposit-queue tbody tr")).to_have_count(1)
    expect(page.get_by_text("E2E-ARRIVAL-7")).to_be_visible()
    shot("02-filtered")

    page.get_by_label(f"Select deposit {arrived['id']}").check()
    page.get_by_role("button", name="Accept selected").click()
    expect(page.get_by_text("Accepted 1 deposit.")).to_be_visible()
    expect(page).to_have_url(re.compile(r"q=e2e-arrival"))  # back to the same filtered list
    assert Deposit.objects.get(flashfx_id=arrived["id"]).review_state == "accepted"
    watch.assert_clean(page)


def test_without_javascript_filters_and_paging_work(
    live_server, browser: Browser, watch, monkeypatch
):
    monkeypatch.setattr("payments.selectors.deposits.PAGE_SIZE", 3)
    operator = make_staff("operator", "olivia")
    for i in range(7):
        make_deposit(flashfx_status="CONFIRMED", amount=Decimal(10 + i))
    make_deposit(flashfx_status="REVIEWING", external_reference="HELD-1")
    context = browser.new_context(java_script_enabled=False)
    try:
        signed_in(context, live_server.url, operator)
        page = context.new_page()
        page.goto(live_server.url + "/deposits/")
        page.get_by_role("search", name="Filter deposits").get_by_label(
            "FlashFX status"
        ).select_option("CONFIRMED")
        page.get_by_role("search", name="Filter deposits").get_by_label("Sort").select_option(
            "smallest"
        )
        page.get_by_role("button", name="Filter").click()
        expect(page).to_have_url(re.compile(r"status=CONFIRMED"))
        rows = page.locator("table.deposit-queue tbody tr")
        expect(rows).to_have_count(3)
        expect(rows.first).to_contain_text("AUD 10.00")
        page.get_by_role("link", name="Next").click()
        expect(rows.first).to_contain_text("AUD 13.00")
        page.get_by_role("link", name="Next").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("AUD 16.00")
        page.get_by_role("link", name="Previous").click()
        expect(rows.first).to_contain_text("AUD 13.00")
        expect(page.get_by_text("HELD-1")).to_have_count(0)
    finally:
        context.close()


def test_a_viewer_sees_no_accept_selected(live_server, page: Page, context, watch):
    make_deposit()
    signed_in(context, live_server.url, make_staff("viewer", "vera"))
    page.goto(live_server.url + "/deposits/")
    expect(page.locator("table.deposit-queue tbody tr")).to_have_count(1)
    expect(page.get_by_role("button", name="Accept selected")).to_have_count(0)
    expect(page.get_by_role("checkbox")).to_have_count(0)
    watch.assert_clean(page)
