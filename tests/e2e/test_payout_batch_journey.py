"""Batch payouts in a real browser, through the real path: an operator uploads a CSV with bad
rows and sees each problem under its cell, fixes the file, uploads it again and submits the
batch for approval; an approver, in a browser of their own, approves it with the step-up code;
the worker's tasks (eager here) make the bank-details row's recipient and send every payout to
the sandbox once; the sandbox's signed webhooks move our mirror; the operator's page, never
reloaded, follows the progress to every payout CONFIRMED; the result file is downloaded and
read."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from browser_flashfx import sign_in
from playwright.sync_api import expect
from staff import code, make_staff
from test_payouts import (
    mark_document,
    parties,  # noqa: F401 (the fixture: a recipient and a sender at FlashFX, money)
    still_same_document,
)

from mirrors.client import flashfx_client
from payments.models import Payout, PayoutBatch

COLUMNS = ["recipient_id", "account_name", "bsb", "account_no", "amount", "reference"]


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def rows(recipient_id: str, *, fixed: bool) -> list[dict]:
    return [
        {"recipient_id": recipient_id, "amount": "100.00", "reference": "INV 501"},
        {"recipient_id": recipient_id, "amount": "1000.00" if fixed else "1,000", "reference": "INV 502"},
        {"account_name": "Kim's Bakery Pty Ltd", "bsb": "062-000", "account_no": "1234 5679", "amount": "75.20", "reference": "INV 503"},
        {"recipient_id": recipient_id, "amount": "20.00", "reference": "INV 504" if fixed else "A reference far too long"},
    ]  # fmt: skip


def test_a_csv_with_bad_rows_is_fixed_approved_and_every_payout_confirmed(
    live_server,
    flashfx,
    page,
    browser,
    watch,
    settings,
    shot,
    tmp_path,
    request,
):
    base = live_server.url
    recipient, sender = request.getfixturevalue("parties")
    settings.BATCH_PAGE_POLL_SECONDS = 1
    operator = make_staff("operator")
    approver = make_staff("approver")

    sign_in(page, base, operator)
    page.goto(base + "/payouts/")
    page.get_by_role("link", name="Batch payouts").click()
    expect(page.get_by_role("heading", name="Batch payouts")).to_be_visible()
    page.get_by_role("link", name="Upload a batch file").click()
    expect(page.get_by_role("heading", name="New batch of payouts")).to_be_visible()

    # A file with two bad rows: each problem under its cell, nothing created.
    bad = write_csv(tmp_path / "march.csv", rows(recipient.flashfx_id, fixed=False))
    page.get_by_label("Batch file (CSV or Excel .xlsx)").set_input_files(bad)
    page.get_by_role("button", name="Upload and check").click()
    expect(page.get_by_role("heading", name="The check of march.csv")).to_be_visible()
    expect(page.locator("#batch-bad")).to_have_text("2")
    amount = page.locator("#row-3 td.cell-error[data-column=amount]")
    expect(amount).to_contain_text("1,000")
    expect(amount.locator(".cell-message")).to_have_count(1)
    reference = page.locator("#row-5 td.cell-error[data-column=reference]")
    expect(reference.locator(".cell-message")).to_contain_text("18")
    expect(page.locator("#row-2")).to_have_count(0)
    expect(page.locator("#row-4")).to_have_count(0)
    expect(page.get_by_role("button", name="Drop bad rows and submit for approval")).to_be_visible()
    expect(page.get_by_role("button", name="Submit for approval", exact=True)).to_have_count(0)
    shot("01-bad-rows")
    assert not PayoutBatch.objects.exists() and not Payout.objects.exists()

    # Fixed and uploaded again: clean, with its count and total; submitted.
    fixed = write_csv(tmp_path / "march-fixed.csv", rows(recipient.flashfx_id, fixed=True))
    page.get_by_label("Batch file (CSV or Excel .xlsx)").set_input_files(fixed)
    page.get_by_role("button", name="Upload and check").click()
    expect(page.get_by_role("heading", name="The check of march-fixed.csv")).to_be_visible()
    expect(page.locator("#batch-clean-note")).to_have_text("Every row is clean.")
    expect(page.locator("#batch-clean")).to_have_text("4")
    expect(page.locator("#batch-total")).to_have_text("AUD 1,195.20")
    page.get_by_label(re.compile(r"^Sender")).select_option(label="Demo Company Pty Ltd")
    shot("02-clean")
    page.get_by_role("button", name="Submit for approval", exact=True).click()

    batch = PayoutBatch.objects.get()
    expect(page).to_have_url(f"{base}/payouts/batches/{batch.code}/")
    expect(page.locator("#batch-state")).to_have_text("Awaiting approval")
    expect(page.locator("#batch-count")).to_have_text("4")
    expect(page.locator("#batch-approvals")).to_contain_text("0 of 1")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.get_by_role("button", name="Withdraw the batch")).to_be_visible()
    shot("03-awaiting-approval")
    mark_document(page)

    # The approver, in a browser of their own; their code is older than the step-up allows.
    settings.STAFF_STEP_UP_MAX_AGE_SECONDS = 3
    other = browser.new_context(viewport=page.viewport_size)
    try:
        second = other.new_page()
        second.on("console", watch.on_console)
        device = sign_in(second, base, approver)
        second.goto(f"{base}/payouts/batches/{batch.code}/")
        # What the approver weighs: the count, the total, every row.
        expect(second.locator("#batch-total")).to_have_text("AUD 1,195.20")
        expect(second.locator("#batch-results tbody tr")).to_have_count(4)
        expect(second.get_by_label("Why decline")).to_be_visible()
        second.wait_for_timeout(3100)
        second.get_by_role("button", name="Approve").click()
        expect(second.get_by_role("heading", name="Confirm it is you")).to_be_visible()
        assert PayoutBatch.objects.get().state == "awaiting_approval"
        shot("04-step-up", second)
        second.fill("input[name=token]", code(device, steps_ahead=1))
        second.get_by_role("button", name="Confirm").click()
        expect(second).to_have_url(f"{base}/payouts/batches/{batch.code}/")
        second.get_by_role("button", name="Approve").click()
        expect(second.get_by_text(f"Approved: batch {batch.code}, 4 payouts")).to_be_visible()
        shot("05-approved", second)
    finally:
        other.close()

    # The operator's page, never reloaded, follows the batch to every payout CONFIRMED.
    expect(page.locator("#batch-sent")).to_have_text("4 of 4 sent", timeout=15_000)
    expect(page.locator("#batch-state")).to_have_text("Done", timeout=15_000)
    expect(page.locator("#batch-progress-bar")).to_have_attribute("value", "4")
    expect(page.locator("#batch-statuses")).to_have_text("CONFIRMED: 4", timeout=30_000)
    expect(page.get_by_role("button", name="Withdraw the batch")).to_have_count(0)  # swapped
    statuses = page.locator("#batch-results tbody .row-status")
    expect(statuses).to_have_text(["CONFIRMED"] * 4)
    shot("06-confirmed")
    assert still_same_document(page)

    # The result file: a line per row with our code, FlashFX's id and the status.
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the result file (CSV)").click()
    assert download.value.suggested_filename == f"{batch.code}-result.csv"
    text = Path(download.value.path()).read_text(encoding="utf-8")
    lines = list(csv.DictReader(io.StringIO(text)))
    assert [line["row"] for line in lines] == ["2", "3", "4", "5"]
    assert {line["status"] for line in lines} == {"CONFIRMED"}
    client = flashfx_client()
    for line in lines:
        at_flashfx = client.withdrawals(externalId=line["code"])
        assert len(at_flashfx) == 1, line  # the sandbox holds exactly one per row
        assert at_flashfx[0].id == line["flashfx_id"] and line["error"] == ""
    payouts = Payout.objects.filter(batch=batch)
    assert payouts.count() == 4 and {p.withdrawal.flashfx_status for p in payouts} == {"CONFIRMED"}
