"""An admin changes the payout approval policy in the browser; it applies only once a second
admin, in a browser of their own, approves it on the Approvals page."""

from __future__ import annotations

import re

import pytest
from browser_flashfx import sign_in
from playwright.sync_api import expect
from staff import make_staff

from payments.services.payout_policy import payout_policy

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_policy_change_waits_for_a_second_admin(
    live_server, page, browser, watch, settings, shot
):
    settings.PAYOUT_APPROVAL_TIERS = "10000.00:1,*:2"
    base = live_server.url
    ada, grace = make_staff("admin", "ada"), make_staff("admin", "grace")

    sign_in(page, base, ada)
    page.goto(base + "/payouts/policy/")
    expect(
        page.get_by_role("listitem").filter(has_text="Up to AUD 10000.00: one approver")
    ).to_be_visible()
    page.get_by_label("Approval tiers").fill("500.00:1, *:2")
    page.get_by_label("Approvals expire after (hours)").fill("12")
    page.get_by_role("button", name="Ask a second admin to approve").click()
    expect(page.get_by_text("Asked a second admin to approve the new policy")).to_be_visible()
    expect(page.get_by_role("heading", name="Waiting for a second admin")).to_be_visible()
    shot("01-asked")
    assert payout_policy().ttl_hours == 24  # nothing applies yet

    other = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        second = other.new_page()
        second.on("console", watch.on_console)
        sign_in(second, base, grace)
        second.goto(base + "/approvals/")
        item = second.locator(".approval", has_text="Payout approval policy")
        expect(item).to_contain_text(
            "up to AUD 500.00: one approver; above AUD 500.00: 2 approvers"
        )
        shot("02-approvals", second)
        item.get_by_role("button", name="Approve").click()
        expect(second.get_by_text(re.compile(r"^Approved: Payout approval policy"))).to_be_visible()
    finally:
        other.close()

    page.goto(base + "/payouts/policy/")
    expect(
        page.get_by_role("listitem").filter(has_text="Up to AUD 500.00: one approver")
    ).to_be_visible()
    expect(page.get_by_text("Approvals expire after 12 hours")).to_be_visible()
    changes = page.get_by_role("table", name=re.compile("Changes to the payout approval policy"))
    expect(changes.get_by_role("row").nth(1)).to_contain_text("500.00:1,*:2")
    expect(changes.get_by_role("row").nth(1)).to_contain_text("grace")
    shot("03-in-force")
    assert payout_policy().ttl_hours == 12


def test_others_see_the_policy_without_the_form(live_server, page, settings):
    sign_in(page, live_server.url, make_staff("approver", "alice"))
    page.goto(live_server.url + "/payouts/policy/")
    expect(page.get_by_role("heading", name="In force")).to_be_visible()
    expect(page.get_by_role("button", name="Ask a second admin to approve")).to_have_count(0)
