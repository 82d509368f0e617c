"""The batch payout pages through Django's test client, against the sandbox with the real
client: a file uploaded and checked with every bad cell shown and nothing created; a clean
file submitted with the step-up; bad rows dropped; refusals on the field they name; the
maker who never sees Approve; an approver's approval sending every payout; the page's poll;
the result file; decline and withdraw."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import openpyxl
import pytest
from batch_support import approve, csv_bytes, csv_upload, rows_for, submit, withdrawals_per_code
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from payout_support import fund, recipient_at_flashfx, sender_at_flashfx
from refund_support import app_at
from staff import make_staff, sign_in

from payments import tasks
from payments.models import Payout, PayoutBatch, PayoutBatchFile
from payments.services import payout_batches

pytestmark = pytest.mark.django_db
STALE = 3600  # seconds since the last code: older than STAFF_STEP_UP_MAX_AGE_SECONDS
NEW = "/payouts/batches/new/"


@pytest.fixture
def recipient(sandbox, settings):
    """A recipient at FlashFX (the sandbox, which the app's client calls), mirrored; money."""
    with app_at(sandbox, settings):
        fund(sandbox)
        yield recipient_at_flashfx()


@pytest.fixture
def sender(recipient):
    return sender_at_flashfx()


def as_member(client, role, username=None, **kwargs):
    user = make_staff(role, username)
    sign_in(client, user, **kwargs)
    return user


def upload(client, rows, name="batch.csv"):
    return client.post(NEW, {"file": csv_upload(csv_bytes(rows), name)})


def bad_file_rows(recipient):
    rows = rows_for(recipient, 3)
    rows[1]["amount"] = "1,000"  # row 3: thousands separator
    rows[2]["reference"] = "A reference far too long"  # row 4
    return rows


def test_a_file_with_bad_rows_shows_each_error_under_its_cell_and_creates_nothing(
    client, recipient
):
    as_member(client, "operator")
    response = upload(client, bad_file_rows(recipient))
    file = PayoutBatchFile.objects.get()
    assert response.status_code == 302 and response["Location"] == f"{NEW}?file={file.pk}"
    page = client.get(response["Location"]).content.decode()
    assert 'id="batch-checked">3<' in page and 'id="batch-clean">1<' in page
    assert 'id="batch-bad">2<' in page
    assert '<tr id="row-3" class="batch-row bad">' in page
    assert '<tr id="row-4" class="batch-row bad">' in page
    assert 'id="row-2"' not in page  # the clean row is not among the bad ones
    cell = page.split('<tr id="row-3"')[1].split("</tr>")[0]
    assert 'class="cell-error" data-column="amount">1,000<span class="error cell-message">' in cell
    assert "Drop bad rows and submit for approval" in page
    assert ">Submit for approval<" not in page
    assert not PayoutBatch.objects.exists() and not Payout.objects.exists()


def test_a_clean_file_shows_count_and_total_and_is_submitted_with_the_step_up(
    client, recipient, sender
):
    maker = as_member(client, "operator", otp_age=STALE)
    file_page = upload(client, rows_for(recipient, 3, amount="12.50"))["Location"]
    page = client.get(file_page).content.decode()
    assert 'id="batch-total">AUD 37.50<' in page and "Every row is clean." in page
    assert ">Submit for approval<" in page and "Drop bad rows" not in page
    file = PayoutBatchFile.objects.get()
    form = {"file": file.pk, "sender": sender.pk}
    stale = client.post(NEW, form, headers={"referer": file_page})
    assert stale.status_code == 302 and stale["Location"].startswith("/accounts/step-up/")
    assert not PayoutBatch.objects.exists()

    sign_in(client, maker)
    response = client.post(NEW, form, headers={"referer": file_page})
    batch = PayoutBatch.objects.get()
    assert response.status_code == 302 and response["Location"] == batch.get_absolute_url()
    assert (batch.count, batch.total, batch.created_by) == (3, Decimal("37.50"), maker)
    page = client.get(response["Location"]).content.decode()
    assert f"Batch {batch.code}: 3 payouts, AUD 37.50, wait for approval." in page
    back = client.get(file_page)  # the check of a file submitted leads to its batch
    assert back.status_code == 302 and back["Location"] == batch.get_absolute_url()
    assert 'id="batch-state">Awaiting approval<' in page
    assert ">Approve<" not in page  # never its maker


def test_bad_rows_are_refused_unless_dropped(client, recipient, sender):
    as_member(client, "operator")
    file_page = upload(client, bad_file_rows(recipient))["Location"]
    file = PayoutBatchFile.objects.get()
    refused = client.post(NEW, {"file": file.pk, "sender": sender.pk})
    assert refused.status_code == 422
    assert "2 rows of the file have problems" in refused.content.decode()
    assert '<tr id="row-3"' in refused.content.decode()  # the check is shown again
    assert not PayoutBatch.objects.exists()

    response = client.post(
        NEW,
        {"file": file.pk, "sender": sender.pk, "drop_bad_rows": "1"},
        headers={"referer": file_page},
    )
    batch = PayoutBatch.objects.get()
    assert response.status_code == 302
    assert (batch.count, batch.dropped) == (1, 2)
    page = client.get(batch.get_absolute_url()).content.decode()
    assert 'id="batch-dropped">2' in page
    dropped = page.split('<tr id="result-row-3">')[1].split("</tr>")[0]
    assert ">dropped<" in dropped and "amount:" in dropped


def test_the_sender_is_asked_for_on_its_field(client, recipient):
    as_member(client, "operator")
    upload(client, rows_for(recipient, 1))
    file = PayoutBatchFile.objects.get()
    response = client.post(NEW, {"file": file.pk, "sender": ""})
    assert response.status_code == 422
    field = response.content.decode().split('class="field field-sender"')[1].split("</p>")[0]
    assert "Choose the sender" in field
    assert not PayoutBatch.objects.exists()


def test_an_unreadable_file_is_refused_on_the_file_field_and_not_stored(client):
    as_member(client, "operator")
    response = client.post(NEW, {"file": csv_upload(b"amount,reference\n1,2\n", "batch.txt")})
    assert response.status_code == 422
    field = response.content.decode().split('class="field field-file"')[1].split("</p>")[0]
    assert "neither" in field and 'role="alert"' in field
    assert not PayoutBatchFile.objects.exists()
    empty = client.post(NEW, {})
    assert empty.status_code == 422 and "Choose the file to upload." in empty.content.decode()


def test_another_members_file_is_neither_shown_nor_submitted(client, recipient, sender):
    owner = make_staff("operator", "owner")
    file, _ = payout_batches.batch_upload(
        upload=csv_upload(csv_bytes(rows_for(recipient, 1))), by=owner
    )
    as_member(client, "operator")
    assert client.get(f"{NEW}?file={file.pk}").status_code == 404
    assert client.get(f"{NEW}?file=x").status_code == 404
    assert client.post(NEW, {"file": file.pk, "sender": sender.pk}).status_code == 404
    assert not PayoutBatch.objects.exists()


def test_an_approver_cannot_upload(client):
    as_member(client, "approver")
    assert client.get(NEW).status_code == 403


def test_the_maker_is_refused_and_an_approver_approves_and_every_payout_is_sent(
    client, recipient, sender, settings, django_capture_on_commit_callbacks
):
    maker = make_staff("operator")
    batch = submit(maker, rows_for(recipient, 4), sender=sender)
    approve_url = reverse("payments:payout_batch_decide", args=[batch.code, "approve"])
    sign_in(client, maker)
    assert client.post(approve_url).status_code == 403

    approver = as_member(client, "approver", otp_age=STALE)
    page = client.get(batch.get_absolute_url()).content.decode()
    assert ">Approve<" in page and 'id="batch-approvals">0 of 1' in page
    assert 'hx-trigger="every 2s"' in page
    stale = client.post(approve_url, headers={"referer": batch.get_absolute_url()})
    assert stale["Location"].startswith("/accounts/step-up/")
    batch.refresh_from_db()
    assert batch.state == PayoutBatch.State.AWAITING_APPROVAL

    sign_in(client, approver)
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the worker's part, after the commit
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(approve_url)
    assert response.status_code == 302 and response["Location"] == batch.get_absolute_url()
    batch.refresh_from_db()
    assert batch.state == PayoutBatch.State.DONE
    assert set(withdrawals_per_code(batch).values()) == {1}

    fragment = client.get(batch.get_absolute_url(), headers={"HX-Request": "true"})
    text = fragment.content.decode()
    assert text.count('id="batch-progress"') == 1
    assert "<h1>" not in text and 'id="batch-sent">4 of 4 sent<' in text
    assert '<progress id="batch-progress-bar" max="4" value="4">' in text
    for payout in batch.payouts.all():  # each row's code opens its payout's page
        assert f'<a href="/payouts/{payout.code}/"><code>{payout.code}</code></a>' in text
    assert "HX-Request" in fragment["Vary"]
    # The actions follow out of band: nothing left to approve.
    actions = text.split('id="batch-actions"')[1]
    assert 'hx-swap-oob="true"' in actions.split(">")[0] and ">Approve<" not in actions


def test_the_result_file_is_downloaded_with_a_line_per_row(client, recipient, sender, settings):
    maker = make_staff("operator")
    rows = rows_for(recipient, 2)
    rows.append({"recipient_id": recipient.flashfx_id, "amount": "-5", "reference": "=HYPERLINK"})
    batch = submit(maker, rows, sender=sender, drop_bad_rows=True)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    batch = approve(batch, make_staff("approver"))
    tasks.payout_batch_send.delay(batch.pk)
    as_member(client, "compliance")
    response = client.get(reverse("payments:payout_batch_result", args=[batch.code]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == f'attachment; filename="{batch.code}-result.csv"'
    lines = list(csv.reader(io.StringIO(response.content.decode())))
    assert lines[0] == ["row", "code", "flashfx_id", "status", "error"]
    assert [line[0] for line in lines[1:]] == ["2", "3", "4"]
    codes = dict(Payout.objects.filter(batch=batch).values_list("code", "withdrawal__flashfx_id"))
    for line in lines[1:3]:
        assert line[2] == codes[line[1]] and line[2]
    assert lines[3][1:4] == ["", "", "dropped"] and lines[3][4].startswith("amount:")


def test_an_approver_declines_with_a_note_and_the_maker_withdraws_another(
    client, recipient, sender
):
    maker = make_staff("operator")
    first = submit(maker, rows_for(recipient, 1, prefix="A"), sender=sender)
    second = submit(maker, rows_for(recipient, 1, prefix="B"), sender=sender)
    as_member(client, "approver")
    url = reverse("payments:payout_batch_decide", args=[first.code, "decline"])
    response = client.post(url, {"note": "Wrong month"})
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.state == PayoutBatch.State.DECLINED
    page = client.get(first.get_absolute_url()).content.decode()
    assert f"Declined: batch {first.code}." in page and "hx-trigger" not in page
    assert (
        client.post(reverse("payments:payout_batch_cancel", args=[second.code])).status_code == 403
    )

    sign_in(client, maker)
    page = client.get(second.get_absolute_url()).content.decode()
    assert "Withdraw the batch" in page
    client.post(reverse("payments:payout_batch_cancel", args=[second.code]))
    second.refresh_from_db()
    assert second.state == PayoutBatch.State.CANCELLED
    assert set(second.payouts.values_list("state", flat=True)) == {Payout.State.CANCELLED}


def test_the_list_shows_batches_and_the_payouts_page_links_to_it(client, recipient, sender):
    batch = submit(make_staff("operator"), rows_for(recipient, 2), sender=sender)
    as_member(client, "approver")
    assert 'href="/payouts/batches/">Batch payouts</a>' in client.get("/payouts/").content.decode()
    page = client.get("/payouts/batches/").content.decode()
    assert f'<a href="{batch.get_absolute_url()}"><code>{batch.code}</code></a>' in page
    assert "AUD 20.00" in page and "Upload a batch file" not in page
    waiting = client.get("/payouts/batches/?state=awaiting_approval").content.decode()
    assert batch.code in waiting
    assert "No batches match." in client.get("/payouts/batches/?state=done").content.decode()
    assert batch.code in client.get("/payouts/batches/?state=nonsense").content.decode()
    # The approvals page leads to the batch's own page.
    approvals = client.get("/approvals/").content.decode()
    assert f'<a href="{batch.get_absolute_url()}">Open the batch</a>' in approvals
    assert client.get("/payouts/batches/NOPE/").status_code == 404


def test_the_batch_page_and_its_poll_take_a_constant_number_of_queries(client, recipient, sender):
    as_member(client, "approver")
    maker = make_staff("operator")

    def queries(count: int, prefix: str) -> tuple[int, int]:
        batch = submit(maker, rows_for(recipient, count, prefix=prefix), sender=sender)
        with CaptureQueriesContext(connection) as page:
            assert client.get(batch.get_absolute_url()).status_code == 200
        with CaptureQueriesContext(connection) as poll:
            client.get(batch.get_absolute_url(), headers={"HX-Request": "true"})
        return len(page), len(poll)

    assert queries(2, "A") == queries(25, "B")


def test_a_large_batchs_rows_are_shown_a_page_at_a_time_and_the_poll_keeps_its_page(
    client, recipient, sender, settings
):
    batch = submit(make_staff("operator"), rows_for(recipient, 105), sender=sender)
    as_member(client, "approver")
    first = client.get(batch.get_absolute_url()).content.decode()
    assert first.count('<tr id="result-row-') == 100 and "1 to 100 of 105" in first
    assert 'href="?rows=2">Next rows<' in first and "Previous rows" not in first
    second = client.get(batch.get_absolute_url() + "?rows=2", headers={"HX-Request": "true"})
    text = second.content.decode()
    assert text.count('<tr id="result-row-') == 5 and '<tr id="result-row-102">' in text
    assert f'hx-get="{batch.get_absolute_url()}?rows=2"' in text
    assert 'href="?rows=1">Previous rows<' in text
    beyond = client.get(batch.get_absolute_url() + "?rows=99").content.decode()
    assert "101 to 105 of 105" in beyond
    assert "1 to 100 of 105" in client.get(batch.get_absolute_url() + "?rows=x").content.decode()


def test_an_xlsx_file_is_uploaded_and_checked_like_a_csv(client, recipient):
    as_member(client, "operator")
    book = openpyxl.Workbook()
    book.active.append(["recipient_id", "amount", "reference"])
    book.active.append([recipient.flashfx_id, 1250.5, "INV 1"])
    book.active.append([recipient.flashfx_id, -3, "INV 2"])
    data = io.BytesIO()
    book.save(data)
    response = client.post(NEW, {"file": csv_upload(data.getvalue(), "batch.xlsx")})
    page = client.get(response["Location"]).content.decode()
    assert 'id="batch-total">AUD 1,250.50<' in page
    assert 'class="cell-error" data-column="amount">-3<' in page
