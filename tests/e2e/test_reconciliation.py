"""Reconciliation in a real browser: a compliance member finds a deposit whose mirrored amount
is wrong among the open items, sees FlashFX's value beside ours, re-applies FlashFX's version
after the step-up code and sees it settled; an operator runs a reconciliation now and reads
the day's statement from FlashFX beside the mirror."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from browser_flashfx import sign_in
from django.utils import timezone
from harness import close_app_client
from playwright.sync_api import expect
from staff import code, make_staff

from mirrors.client import flashfx_client
from mirrors.models import DriftItem, DriftReport
from mirrors.registry import registry
from payments.models import Deposit


@pytest.fixture
def app_sandbox(live_server, sandbox, settings):
    sandbox.configure(step_delay_seconds=3600, login_interval_seconds=0)  # nothing moves alone
    close_app_client()
    settings.FLASHFX_API_URL = sandbox.url
    settings.CELERY_TASK_ALWAYS_EAGER = True
    yield sandbox
    settings.CELERY_TASK_ALWAYS_EAGER = False
    close_app_client()


def a_wrong_amount_flagged(sandbox) -> Deposit:
    made = sandbox.receive_deposit("250.00")
    assert sandbox.advance("deposits", made["id"], "CONFIRMED").status_code == 200
    registry.get("deposits").apply(flashfx_client().deposit(made["id"]), observed_at=timezone.now())
    Deposit.objects.filter(flashfx_id=made["id"]).update(amount=Decimal("205.00"))
    report = DriftReport.objects.create(
        window_start=timezone.now() - timedelta(days=1),
        window_end=timezone.now(),
        entities=["deposits"],
        finished_at=timezone.now(),
    )
    DriftItem.objects.create(
        report=report,
        entity="deposits",
        flashfx_id=made["id"],
        kind=DriftItem.Kind.CONFLICT,
        differences={"amount": ["205.00", "250.00"]},
        resolution=DriftItem.Resolution.FLAGGED,
        note="FlashFX's version not taken (refused)",
    )
    return Deposit.objects.get(flashfx_id=made["id"])


def test_compliance_re_applies_flashfx_version_after_the_step_up(
    live_server, app_sandbox, page, settings, shot, watch
):
    deposit = a_wrong_amount_flagged(app_sandbox)
    base = live_server.url
    settings.STAFF_STEP_UP_MAX_AGE_SECONDS = 3
    device = sign_in(page, base, make_staff("compliance"))

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Reconciliation").click()
    expect(page.get_by_role("heading", name="Reconciliation", exact=True)).to_be_visible()
    open_items = page.locator("table.open-drift tbody tr")
    expect(open_items).to_have_count(1)
    expect(open_items.first).to_contain_text("Fields differ")
    expect(open_items.first).to_contain_text("amount")
    shot("01-open-items")

    open_items.first.get_by_role("link", name=deposit.flashfx_id).click()
    expect(
        page.get_by_role("heading", name=f"Drift: deposits {deposit.flashfx_id}")
    ).to_be_visible()
    amount = page.locator("table.differences tbody tr", has_text="amount")
    expect(amount).to_contain_text("205.00")
    expect(amount).to_contain_text("250.00")
    expect(page.locator("#item-state")).to_contain_text("Open")

    page.wait_for_timeout(3100)  # the sign-in code is older than the step-up allows by now
    page.get_by_role("button", name="Re-apply FlashFX's version").click()
    expect(page.get_by_role("heading", name="Confirm it is you")).to_be_visible()
    assert Deposit.objects.get(pk=deposit.pk).amount == Decimal("205.00")
    page.fill("input[name=token]", code(device, steps_ahead=1))
    page.get_by_role("button", name="Confirm").click()
    expect(
        page.get_by_role("heading", name=f"Drift: deposits {deposit.flashfx_id}")
    ).to_be_visible()
    page.get_by_label("Note (optional)").fill("Amount typed by hand in a migration")
    page.get_by_role("button", name="Re-apply FlashFX's version").click()
    expect(
        page.get_by_text(re.compile(r"FlashFX's version of deposits \w+ re-applied"))
    ).to_be_visible()
    expect(page.locator("#item-state")).to_contain_text(
        "FlashFX's version re-applied by compliance"
    )
    expect(page.get_by_role("button", name="Mark resolved")).to_have_count(0)
    shot("02-settled")
    assert Deposit.objects.get(pk=deposit.pk).amount == Decimal("250.00")

    page.goto(base + "/reconciliation/")
    expect(page.locator("table.open-drift")).to_have_count(0)
    expect(page.get_by_text("Nothing open")).to_be_visible()
    watch.assert_clean(page)


def test_an_operator_runs_reconciliation_now_and_reads_the_days_statement(
    live_server, app_sandbox, page, shot, watch
):
    made = app_sandbox.receive_deposit("300.00")
    assert app_sandbox.advance("deposits", made["id"], "CONFIRMED").status_code == 200
    base = live_server.url
    sign_in(page, base, make_staff("operator"))
    page.goto(base + "/reconciliation/")
    expect(page.get_by_text("No reconciliation yet")).to_be_visible()

    page.get_by_label("Days back").fill("2")
    page.get_by_role("button", name="Run reconciliation now").click()
    expect(page.get_by_text("Reconciliation of the last 2 days queued")).to_be_visible()
    reports = page.locator("table.drift-reports tbody tr")
    expect(reports).to_have_count(1)  # the worker's task ran eagerly here
    expect(reports.first).to_contain_text("Finished")
    # The deposit FlashFX had and the mirror had not: re-applied, so nothing is left open.
    expect(page.get_by_text("Nothing open")).to_be_visible()
    assert Deposit.objects.filter(flashfx_id=made["id"]).exists()
    shot("01-reconciled")

    statement = page.get_by_role("region", name="A day's statement")
    statement.get_by_label("Currency").fill("AUD")
    statement.get_by_role("button", name="Show the statement").click()
    expect(page.get_by_role("heading", name=re.compile(r"^A day's statement: "))).to_be_visible()
    expect(page.get_by_text("Not asked yet for this day.")).to_be_visible()
    page.get_by_role("button", name="Get the statement from FlashFX").click()
    line = page.locator("table.statement tbody tr", has_text=made["id"]).filter(has_text="DEPOSIT")
    expect(line.first).to_contain_text("300.00")
    expect(line.first).to_contain_text("Matched")
    expect(page.locator("#statement-fetched")).to_contain_text("As FlashFX gave it")
    shot("02-statement")
    watch.assert_clean(page)
