"""Batch payouts through the services (payments/services/payout_batches.py), against the
sandbox with the back-office's real client: a file made a batch (clean, with bad rows dropped,
refused), approved as one unit by the policy's tier on its total, its hash voided by any
change, every payout sent exactly once through the payout pipeline, progress, the result file,
rows with bank details made recipients once, and a batch resumed after a crash."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import openpyxl
import pytest
from batch_support import (
    approve,
    csv_bytes,
    csv_upload,
    rows_for,
    submit,
    withdrawals_per_code,
)
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from payout_support import fund, recipient_at_flashfx, sender_at_flashfx
from refund_support import app_at
from staff import make_staff, sign_in

from backoffice.models import AuditEvent
from mirrors.client import flashfx_client
from parties.models import Recipient
from payments import tasks
from payments.models import (
    Approval,
    Payout,
    PayoutBatch,
    PayoutBatchFile,
    PayoutBatchRow,
    PayoutOutbox,
)
from payments.services import payout_batches, payouts
from payments.services.payout_batches import BatchError

pytestmark = pytest.mark.django_db
State = PayoutBatch.State
PState = Payout.State


@pytest.fixture
def app_sandbox(sandbox, settings):
    with app_at(sandbox, settings):
        fund(sandbox)
        yield sandbox


@pytest.fixture
def recipient(app_sandbox):
    return recipient_at_flashfx()


@pytest.fixture
def sender(app_sandbox):
    return sender_at_flashfx()


@pytest.fixture
def maker():
    return make_staff("operator")


@pytest.fixture
def approver():
    return make_staff("approver")


@pytest.fixture
def second_approver():
    return make_staff("approver", "approver2")


def send_all(batch, settings):
    """What the workers do after the approval's commit, run here: the batch task and its
    drains (eager)."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    tasks.payout_batch_send.delay(batch.pk)
    batch.refresh_from_db()
    return batch


# --- Creating -------------------------------------------------------------------------------------


def test_a_clean_file_becomes_a_batch_awaiting_approval_with_its_count_and_total(
    maker, recipient, sender
):
    rows = rows_for(recipient, 3, amount="12.50")
    batch = submit(maker, rows, sender=sender)
    assert batch.state == State.AWAITING_APPROVAL
    assert (batch.count, batch.total, batch.dropped) == (3, Decimal("37.50"), 0)
    payouts_made = list(Payout.objects.filter(batch=batch).order_by("reference"))
    assert [p.reference for p in payouts_made] == ["INV 0001", "INV 0002", "INV 0003"]
    assert {p.state for p in payouts_made} == {PState.AWAITING_APPROVAL}
    assert all(p.approval is None and p.sender == sender for p in payouts_made)
    assert [r.row_number for r in batch.rows.all()] == [2, 3, 4]
    approval = batch.approval
    assert approval.action == payout_batches.ACTION and approval.required == 1
    assert approval.payload["count"] == 3 and approval.payload["total"] == "37.50"
    assert set(approval.payload["payouts"]) == {p.code for p in payouts_made}
    assert batch.payload_hash == approval.payload_hash
    assert not PayoutOutbox.objects.exists()
    assert AuditEvent.objects.filter(action="payout_batch.requested").count() == 1
    assert AuditEvent.objects.filter(action="payout.requested").count() == 3


def test_a_file_with_bad_rows_is_refused_whole_and_nothing_is_created(maker, recipient, sender):
    rows = rows_for(recipient, 2)
    rows.append({"recipient_id": recipient.flashfx_id, "amount": "1,000", "reference": "X 1"})
    file, validation = payout_batches.batch_upload(upload=csv_upload(csv_bytes(rows)), by=maker)
    assert not validation.ok and file.rows_checked == 3 and file.rows_clean == 2
    assert file.errors[0]["row"] == 4 and file.errors[0]["column"] == "amount"
    with pytest.raises(BatchError, match="1 row of the file has problems") as refused:
        payout_batches.batch_create(file=file, by=maker, sender=sender)
    assert refused.value.validation.errors[0].row == 4
    assert not PayoutBatch.objects.exists() and not Payout.objects.exists()
    assert not Approval.objects.exists()


def test_dropping_the_bad_rows_keeps_them_with_their_errors(maker, recipient, sender):
    rows = rows_for(recipient, 2)
    rows.insert(1, {"recipient_id": recipient.flashfx_id, "amount": "-5", "reference": "X 1"})
    file, _ = payout_batches.batch_upload(upload=csv_upload(csv_bytes(rows)), by=maker)
    batch = payout_batches.batch_create(file=file, by=maker, sender=sender, drop_bad_rows=True)
    assert (batch.count, batch.total, batch.dropped) == (2, Decimal("20.00"), 1)
    dropped = batch.rows.get(row_number=3)
    assert dropped.dropped and dropped.payout is None
    assert dropped.errors == [{"column": "amount", "message": "The amount must be more than zero."}]
    assert Payout.objects.filter(batch=batch).count() == 2


def test_a_file_is_one_batch_at_a_time_and_only_its_uploader_submits_it(maker, recipient, sender):
    file, _ = payout_batches.batch_upload(
        upload=csv_upload(csv_bytes(rows_for(recipient, 1))), by=maker
    )
    other = make_staff("operator", "operator2")
    with pytest.raises(BatchError, match="uploaded this file"):
        payout_batches.batch_create(file=file, by=other, sender=sender)
    batch = payout_batches.batch_create(file=file, by=maker, sender=sender)
    with pytest.raises(BatchError, match=f"batch {batch.code} already"):
        payout_batches.batch_create(file=file, by=maker, sender=sender)


def test_rows_naming_no_sender_need_the_batch_sender(maker, recipient):
    file, _ = payout_batches.batch_upload(
        upload=csv_upload(csv_bytes(rows_for(recipient, 1))), by=maker
    )
    with pytest.raises(BatchError, match="Choose the sender") as refused:
        payout_batches.batch_create(file=file, by=maker)
    assert refused.value.field == "sender"


def test_an_unreadable_file_is_refused_and_not_stored(maker):
    with pytest.raises(payout_batches.BatchFileError):
        payout_batches.batch_upload(upload=csv_upload(b"amount;reference\n1;2\n"), by=maker)
    assert not PayoutBatchFile.objects.exists()


def test_creating_a_batch_takes_a_constant_number_of_statements(maker, recipient, sender):
    def statements(count):
        file, _ = payout_batches.batch_upload(
            upload=csv_upload(csv_bytes(rows_for(recipient, count, prefix=f"N{count}"))),
            by=maker,
        )
        with CaptureQueriesContext(connection) as queries:
            payout_batches.batch_create(file=file, by=maker, sender=sender)
        return len(queries)

    assert statements(3) == statements(40)


# --- Approving ----------------------------------------------------------------------------------


def test_approval_approves_every_payout_with_its_outbox_row_in_one_go(
    maker, approver, recipient, sender
):
    batch = submit(maker, rows_for(recipient, 3), sender=sender)
    assert payout_batches.batch_approval_blocker(batch, maker) is not None
    assert payout_batches.batch_approval_blocker(batch, approver) is None
    batch = approve(batch, approver)
    assert batch.state == State.APPROVED and batch.approved_at is not None
    assert set(Payout.objects.filter(batch=batch).values_list("state", flat=True)) == {
        PState.APPROVED
    }
    bound = batch.approval.payload["payouts"]
    for outbox in PayoutOutbox.objects.select_related("payout"):
        assert outbox.state == PayoutOutbox.State.APPROVED
        assert outbox.payload_hash == bound[outbox.payout.code]
        assert (
            outbox.request["externalId"] == outbox.request["idempotencyKey"] == outbox.payout.code
        )


def test_the_maker_and_the_wrong_role_cannot_approve(maker, recipient, sender):
    maker.groups.add(*make_staff("approver", "a").groups.all())  # a maker who also approves
    maker = type(maker).objects.get(pk=maker.pk)
    batch = submit(maker, rows_for(recipient, 1), sender=sender)
    with pytest.raises(BatchError, match="other members must approve"):
        payout_batches.batch_approve(batch=batch, by=maker)
    with pytest.raises(BatchError, match="does not approve"):
        payout_batches.batch_approve(batch=batch, by=make_staff("operator", "op2"))


def test_a_batch_payout_is_never_approved_or_withdrawn_one_by_one(
    maker, approver, recipient, sender
):
    batch = submit(maker, rows_for(recipient, 1), sender=sender)
    payout = Payout.objects.get(batch=batch)
    assert "belongs to batch" in payouts.approval_blocker(payout, approver)
    with pytest.raises(payouts.PayoutError, match="belongs to batch"):
        payouts.payout_approve(payout=payout, by=approver)
    with pytest.raises(payouts.PayoutError, match="belongs to batch"):
        payouts.payout_cancel(payout=payout, by=maker)
    with pytest.raises(payouts.PayoutError, match="belongs to batch"):
        payouts.payout_edit(payout=payout, by=maker, reference="OTHER")


def test_the_tier_of_the_total_asks_for_two_distinct_approvers(
    maker, approver, second_approver, recipient, sender
):
    # Each payout is under the one-approver tier (10,000.00); the batch's total is not.
    batch = submit(maker, rows_for(recipient, 3, amount="4000.00"), sender=sender)
    assert batch.approval.required == 2
    batch = approve(batch, approver)
    assert batch.state == State.AWAITING_APPROVAL
    assert not PayoutOutbox.objects.exists()
    with pytest.raises(BatchError, match="approved it; it waits"):
        payout_batches.batch_approve(batch=batch, by=approver)
    batch = approve(batch, second_approver)
    assert batch.state == State.APPROVED
    assert PayoutOutbox.objects.count() == 3


def test_a_recipient_changed_since_submission_voids_the_approval_and_asks_again(
    maker, approver, recipient, sender
):
    batch = submit(maker, rows_for(recipient, 2), sender=sender)
    first = batch.approval
    Recipient.objects.filter(pk=recipient.pk).update(account_no="99999999")
    with pytest.raises(BatchError, match="asked for again"):
        payout_batches.batch_approve(batch=batch, by=approver)
    first.refresh_from_db()
    batch.refresh_from_db()
    assert first.state == Approval.State.CANCELLED
    assert batch.approval != first and batch.approval.state == Approval.State.PENDING
    assert batch.payload_hash == batch.approval.payload_hash != first.payload_hash
    assert not PayoutOutbox.objects.exists()
    batch = approve(batch, approver)  # now bound to what is there
    assert batch.state == State.APPROVED


def test_the_approving_transaction_is_all_or_nothing(
    maker, approver, recipient, sender, monkeypatch
):
    batch = submit(maker, rows_for(recipient, 3), sender=sender)

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(payout_batches.audit, "record", broken)
    with pytest.raises(RuntimeError):
        payout_batches.batch_approve(batch=batch, by=approver)
    batch.refresh_from_db()
    assert batch.state == State.AWAITING_APPROVAL
    assert batch.approval.state == Approval.State.PENDING
    assert not batch.approval.signatures.exists()
    assert not PayoutOutbox.objects.exists()
    assert set(Payout.objects.values_list("state", flat=True)) == {PState.AWAITING_APPROVAL}


def test_approving_takes_a_constant_number_of_statements(maker, approver, recipient, sender):
    def statements(count):
        batch = submit(maker, rows_for(recipient, count, prefix=f"A{count}"), sender=sender)
        with CaptureQueriesContext(connection) as queries:
            approve(batch, approver)
        return len(queries)

    statements(2)  # the approver's permissions, read once per user object
    assert statements(3) == statements(40)


def test_decline_and_cancel_close_the_batch_and_its_payouts(maker, approver, recipient, sender):
    declined = submit(maker, rows_for(recipient, 2), sender=sender)
    declined = payout_batches.batch_decline(batch=declined, by=approver, note="wrong month")
    assert declined.state == State.DECLINED
    assert set(declined.payouts.values_list("state", flat=True)) == {PState.DECLINED}
    cancelled = submit(maker, rows_for(recipient, 2, prefix="C"), sender=sender)
    with pytest.raises(BatchError, match="Only the member who submitted"):
        payout_batches.batch_cancel(batch=cancelled, by=approver)
    cancelled = payout_batches.batch_cancel(batch=cancelled, by=maker)
    assert cancelled.state == State.CANCELLED
    assert cancelled.approval.state == Approval.State.CANCELLED
    assert set(cancelled.payouts.values_list("state", flat=True)) == {PState.CANCELLED}
    with pytest.raises(BatchError):
        payout_batches.batch_approve(batch=cancelled, by=approver)


def test_an_expired_batch_approval_expires_the_batch(maker, recipient, sender):
    batch = submit(maker, rows_for(recipient, 2), sender=sender)
    Approval.objects.filter(pk=batch.approval_id).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    tasks.payments_sweep()
    batch.refresh_from_db()
    assert batch.state == State.EXPIRED
    assert set(batch.payouts.values_list("state", flat=True)) == {PState.EXPIRED}


# --- Sending ------------------------------------------------------------------------------------


def test_every_payout_is_sent_exactly_once_and_the_batch_is_done(
    maker, approver, recipient, sender, settings
):
    settings.PAYOUT_SEND_GROUP = 4
    batch = approve(submit(maker, rows_for(recipient, 10), sender=sender), approver)
    batch = send_all(batch, settings)
    assert batch.state == State.DONE and batch.done_at is not None
    assert set(batch.payouts.values_list("state", flat=True)) == {PState.SUBMITTED}
    assert set(withdrawals_per_code(batch).values()) == {1}
    tasks.payout_batch_send.delay(batch.pk)  # run twice: nothing more is sent
    assert set(withdrawals_per_code(batch).values()) == {1}
    progress = payout_batches.batch_progress(batch)
    assert (progress.total, progress.sent, progress.failed, progress.done) == (10, 10, 0, True)
    assert progress.percent == 100
    assert sum(progress.by_status.values()) == 10


def test_progress_while_nothing_is_sent_yet(maker, approver, recipient, sender):
    batch = approve(submit(maker, rows_for(recipient, 3), sender=sender), approver)
    progress = payout_batches.batch_progress(batch)
    assert progress.by_state == {PState.APPROVED: 3}
    assert (progress.sent, progress.percent, progress.done) == (0, 0, False)


def test_a_recipient_changed_after_approval_is_not_sent_and_asked_about_alone(
    maker, approver, recipient, sender, settings
):
    other = recipient_at_flashfx(accountNo="55555555")
    rows = rows_for(recipient, 2) + rows_for(other, 1, prefix="OTHER")
    batch = approve(submit(maker, rows, sender=sender), approver)
    Recipient.objects.filter(pk=other.pk).update(account_no="66666666")
    batch = send_all(batch, settings)
    changed = Payout.objects.get(batch=batch, recipient=other)
    assert changed.state == PState.AWAITING_APPROVAL and changed.approval is not None
    assert changed.withdrawal is None
    assert batch.state == State.SENDING  # not final: it waits for its own approval
    counts = withdrawals_per_code(batch)
    assert counts[changed.code] == 0 and sum(counts.values()) == 2


def test_the_result_file_has_a_line_per_row_and_no_formula(
    maker, approver, recipient, sender, settings
):
    rows = rows_for(recipient, 2)
    rows.append({"recipient_id": recipient.flashfx_id, "amount": "=1+1", "reference": "X 1"})
    file, _ = payout_batches.batch_upload(upload=csv_upload(csv_bytes(rows)), by=maker)
    batch = payout_batches.batch_create(file=file, by=maker, sender=sender, drop_bad_rows=True)
    batch = send_all(approve(batch, approver), settings)
    lines = payout_batches.batch_result_csv(batch).decode().splitlines()
    assert lines[0] == "row,code,flashfx_id,status,error"
    sent = [line.split(",") for line in lines[1:3]]
    for number, (row, code, flashfx_id, status, error) in zip((2, 3), sent, strict=True):
        payout = Payout.objects.get(code=code)
        assert int(row) == number and flashfx_id == payout.withdrawal.flashfx_id
        assert status == payout.withdrawal.flashfx_status and error == ""
    assert lines[3].startswith("4,,,dropped,")
    assert "=1+1" not in lines[3] or "'=" in lines[3]
    assert payout_batches._cell("=HYPERLINK()") == "'=HYPERLINK()"
    for start in ("+", "-", "@", "\t", "\r"):
        assert payout_batches._cell(f"{start}x").startswith("'")
    assert payout_batches._cell("INV 1") == "INV 1"


# --- Rows with bank details ---------------------------------------------------------------------

INLINE = ("account_name", "bsb", "account_no", "payid", "amount", "reference")


def test_rows_with_bank_details_become_recipients_once_when_the_batch_is_sent(
    maker, approver, sender, settings, app_sandbox
):
    rows = [
        {"account_name": "Kim's Bakery Pty Ltd", "bsb": "062-000", "account_no": "1234 5678",
         "amount": "75.20", "reference": "INV 88"},
        {"account_name": "Jo Citizen", "payid": "jo@example.com", "amount": "42.00",
         "reference": "REFUND 1193"},
    ]  # fmt: skip
    before = Recipient.objects.count()
    batch = submit(maker, rows, sender=sender, columns=INLINE)
    assert Payout.objects.filter(batch=batch).count() == 0  # made when sent
    assert Recipient.objects.count() == before
    codes = set(batch.rows.values_list("payout_code", flat=True))
    assert codes == set(batch.approval.payload["payouts"])
    batch = send_all(approve(batch, approver), settings)
    assert batch.state == State.DONE
    made = Payout.objects.filter(batch=batch)
    assert set(made.values_list("code", flat=True)) == codes
    assert set(made.values_list("state", flat=True)) == {PState.SUBMITTED}
    assert Recipient.objects.count() == before + 2
    row = batch.rows.get(row_number=2)
    assert row.recipient.external_id == f"{batch.code}-R2"
    assert (row.recipient.bsb, row.recipient.account_no) == ("062000", "12345678")
    assert set(withdrawals_per_code(batch).values()) == {1}


def test_a_recipient_created_before_a_crash_is_found_not_made_again(
    maker, approver, sender, settings, app_sandbox
):
    rows = [{"account_name": "Jo Citizen", "payid": "jo@example.com", "amount": "42.00",
             "reference": "REFUND 1193"}]  # fmt: skip
    batch = approve(submit(maker, rows, sender=sender, columns=INLINE), approver)
    row = batch.rows.get()
    # The create went through at FlashFX, then the worker died before it was mirrored.
    flashfx_client().create_recipient(
        {"accountIdType": "PAYID", "currency": "AUD", "payid": "jo@example.com",
         "companyName": "Jo Citizen", "externalId": f"{batch.code}-R{row.row_number}"}
    )  # fmt: skip
    batch = send_all(batch, settings)
    assert batch.state == State.DONE
    found = flashfx_client().recipients(externalId=f"{batch.code}-R{row.row_number}")
    assert len(found) == 1
    row.refresh_from_db()
    assert row.recipient.flashfx_id == found[0].id
    assert set(withdrawals_per_code(batch).values()) == {1}


# --- Resuming -----------------------------------------------------------------------------------


def test_a_batch_interrupted_mid_send_resumes_through_the_sweeps_without_duplicates(
    maker, approver, recipient, sender, settings
):
    settings.PAYOUT_SEND_GROUP = 3
    batch = approve(submit(maker, rows_for(recipient, 9), sender=sender), approver)
    payout_batches.batch_prepare(batch)
    # A worker claimed and sent one group, then died before recording the answers; the rest
    # of the batch was never sent (its messages lost with the worker).
    first = PayoutOutbox.objects.filter(payout__batch=batch).order_by("pk")[:3]
    ids = [o.pk for o in first]
    claimed, _ = payouts._claim(ids[0], 3)
    for outbox, _payout in claimed:
        flashfx_client().create_withdrawal(payouts._wire(outbox.request))
    assert PayoutOutbox.objects.filter(state=PayoutOutbox.State.SUBMITTING).count() == 3
    # Later: the sweeps, after PAYOUT_STUCK_AFTER.
    long_ago = timezone.now() - timedelta(minutes=10)
    PayoutOutbox.objects.update(created_at=long_ago)
    PayoutOutbox.objects.filter(state=PayoutOutbox.State.SUBMITTING).update(claimed_at=long_ago)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    tasks.payouts_sweep()
    tasks.payout_batches_sweep()
    batch.refresh_from_db()
    assert batch.state == State.DONE
    assert set(withdrawals_per_code(batch).values()) == {1}
    assert set(batch.payouts.values_list("state", flat=True)) == {PState.SUBMITTED}


def test_rows_and_payouts_match(maker, recipient, sender):
    batch = submit(maker, rows_for(recipient, 2), sender=sender)
    for row in PayoutBatchRow.objects.filter(batch=batch):
        assert row.payout.code == row.payout_code
        assert row.payload_hash == payout_batches.payout_hash(row.payout)


# --- FlashFX's limits and lost answers ----------------------------------------------------------


def test_a_429_mid_group_stops_the_calls_and_puts_the_rest_back_approved(
    maker, approver, recipient, sender, settings, app_sandbox
):
    settings.PAYOUT_SEND_GROUP = 5
    batch = approve(submit(maker, rows_for(recipient, 5), sender=sender), approver)
    payout_batches.batch_prepare(batch)
    app_sandbox.faults(rate_limit_429=1, operations=["createWithdrawal"], limit=1)
    with pytest.raises(payouts.RateLimited) as limited:
        payout_batches.batch_send_next(batch)
    assert limited.value.retry_after is not None
    # The first call was limited: nothing was executed (docs/flashfx.md §1.4), and the
    # group's other rows were never called: all approved again, none at FlashFX.
    assert set(limited.value.outcomes.values()) == {PayoutOutbox.State.APPROVED}
    assert set(batch.payouts.values_list("state", flat=True)) == {PState.APPROVED}
    assert set(withdrawals_per_code(batch).values()) == {0}
    outbox = PayoutOutbox.objects.filter(payout__batch=batch).order_by("pk").first()
    assert outbox.attempts == 1 and outbox.last_error.startswith("TOO_MANY_REQUESTS")
    # Later, the same requests with the same keys: each sent once.
    while payout_batches.batch_send_next(batch) is not None:
        pass
    assert set(withdrawals_per_code(batch).values()) == {1}
    assert set(batch.payouts.values_list("state", flat=True)) == {PState.SUBMITTED}


def test_429s_and_lost_answers_during_a_batch_leave_one_withdrawal_per_row(
    maker, approver, recipient, sender, settings, app_sandbox
):
    settings.PAYOUT_SEND_GROUP = 4
    batch = approve(submit(maker, rows_for(recipient, 12), sender=sender), approver)
    payout_batches.batch_prepare(batch)
    app_sandbox.faults(
        rate_limit_429=0.2, commit_then_drop=0.2, operations=["createWithdrawal"], limit=6
    )
    for _ in range(40):  # what drains, retries and recovery do, run here in turn
        try:
            if payout_batches.batch_send_next(batch) is None:
                break
        except payouts.RateLimited:
            continue
    app_sandbox.faults(limit=0)
    long_ago = timezone.now() - timedelta(minutes=10)
    PayoutOutbox.objects.filter(state=PayoutOutbox.State.SUBMITTING).update(claimed_at=long_ago)
    for outbox_id in PayoutOutbox.objects.filter(state=PayoutOutbox.State.SUBMITTING).values_list(
        "pk", flat=True
    ):
        assert payouts.payout_recover(outbox_id) == PayoutOutbox.State.SUBMITTED
    assert set(withdrawals_per_code(batch).values()) == {1}
    assert payout_batches.batch_settle() == [batch.code]


def test_the_drain_task_backs_off_after_a_429_and_finishes_later(
    maker, approver, recipient, sender, settings, app_sandbox
):
    settings.PAYOUT_SEND_GROUP = 3
    batch = approve(submit(maker, rows_for(recipient, 6), sender=sender), approver)
    payout_batches.batch_prepare(batch)
    app_sandbox.faults(rate_limit_429=1, operations=["createWithdrawal"], limit=1)
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the drain scheduled after Retry-After runs now
    assert tasks.payout_batch_drain.delay(batch.pk).get() == 0  # it gave way to the later one
    batch.refresh_from_db()
    assert batch.state == State.DONE
    assert set(withdrawals_per_code(batch).values()) == {1}
    first = PayoutOutbox.objects.filter(payout__batch=batch).order_by("pk").first()
    assert first.attempts == 2  # the limited call and the one that went through
    events = list(first.payout.events.values_list("to_state", flat=True))
    assert events == [
        PState.AWAITING_APPROVAL,
        PState.APPROVED,
        PState.SUBMITTING,
        PState.APPROVED,
        PState.SUBMITTING,
        PState.SUBMITTED,
    ]


def test_flashfx_unavailable_or_silent_while_making_recipients_never_makes_two(
    maker, approver, sender, settings, app_sandbox
):
    rows = [
        {"account_name": "Jo Citizen", "payid": "jo@example.com", "amount": "42.00",
         "reference": "REFUND 1193"},
        {"account_name": "Kim Lee", "payid": "kim@example.com", "amount": "10.00",
         "reference": "REFUND 1194"},
    ]  # fmt: skip
    batch = approve(submit(maker, rows, sender=sender, columns=INLINE), approver)
    app_sandbox.faults(http_500=1, operations=["createRecipient"], limit=1)
    with pytest.raises(payout_batches.PartyError):
        payout_batches.batch_prepare(batch)
    assert batch.rows.filter(payout=None).count() == 2  # nothing made, nothing lost
    assert payout_batches.batches_due() == [batch.pk]
    # Created at FlashFX, the answer lost: found by its externalId, not created again.
    app_sandbox.faults(commit_then_drop=1, operations=["createRecipient"], limit=1)
    assert payout_batches.batch_prepare(batch) == 2
    assert payout_batches.batches_due() == []
    for row in batch.rows.all():
        assert len(flashfx_client().recipients(externalId=f"{batch.code}-R{row.row_number}")) == 1
    batch = send_all(batch, settings)
    assert batch.state == State.DONE
    assert set(withdrawals_per_code(batch).values()) == {1}


def test_a_row_repeating_a_bank_details_row_of_a_batch_not_sent_yet_is_flagged(
    maker, sender, app_sandbox
):
    rows = [{"account_name": "Jo Citizen", "payid": "jo@example.com", "amount": "42.00",
             "reference": "REFUND 1193"}]  # fmt: skip
    first = submit(maker, rows, sender=sender, columns=INLINE)
    again = rows + [{"account_name": "Jo Citizen", "payid": "JO@example.com", "amount": "42.00",
                     "reference": "REFUND 1194"}]  # fmt: skip
    file, validation = payout_batches.batch_upload(
        upload=csv_upload(csv_bytes(again, INLINE)), by=maker
    )
    assert [(e.row, e.column) for e in validation.errors] == [(2, "reference")]
    assert f"Row 2 of batch {first.code} (awaiting approval)" in validation.errors[0].message
    assert [r.row for r in validation.rows] == [3] and file.rows_clean == 1
    payout_batches.batch_cancel(batch=first, by=maker)  # withdrawn: no longer a duplicate
    assert payout_batches.batch_recheck(file).ok


def test_the_recovery_of_a_batchs_last_payout_finishes_the_batch(
    maker, approver, recipient, sender, app_sandbox
):
    batch = approve(submit(maker, rows_for(recipient, 3), sender=sender), approver)
    payout_batches.batch_prepare(batch)
    app_sandbox.faults(commit_then_drop=1, operations=["createWithdrawal"], limit=1)
    while payout_batches.batch_send_next(batch) is not None:
        pass
    assert payout_batches.batch_settle() == []  # one answer lost: not final yet
    lost = PayoutOutbox.objects.get(state=PayoutOutbox.State.SUBMITTING)
    lost.claimed_at = timezone.now() - timedelta(minutes=10)
    lost.save(update_fields=["claimed_at"])
    assert tasks.payout_recover.run(lost.pk) == PayoutOutbox.State.SUBMITTED
    batch.refresh_from_db()
    assert batch.state == State.DONE
    assert set(withdrawals_per_code(batch).values()) == {1}


def test_a_batch_mixing_named_recipients_and_bank_details_is_sent_whole(
    maker, approver, recipient, sender, settings, app_sandbox
):
    columns = ("recipient_id", *INLINE)
    rows = rows_for(recipient, 3) + [
        {"account_name": "Jo Citizen", "payid": "jo@example.com", "amount": "42.00",
         "reference": "REFUND 1193"}
    ]  # fmt: skip
    batch = send_all(
        approve(submit(maker, rows, sender=sender, columns=columns), approver), settings
    )
    assert batch.state == State.DONE
    assert batch.payouts.count() == 4
    assert set(withdrawals_per_code(batch).values()) == {1}


def test_a_batch_payouts_own_page_says_it_is_approved_with_its_batch(
    maker, approver, recipient, sender, client
):
    batch = submit(maker, rows_for(recipient, 1), sender=sender)
    payout = batch.payouts.get()
    sign_in(client, approver)
    response = client.get(reverse("payments:payout", args=[payout.code]))
    assert response.status_code == 200
    assert f"belongs to batch {batch.code}" in response.content.decode()


def test_an_xlsx_file_makes_the_same_batch(maker, recipient, sender):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["recipient_id", "amount", "reference"])
    sheet.append([recipient.flashfx_id, 1250.5, "INV 1"])
    sheet.append([recipient.flashfx_id, 75, "INV 2"])
    data = io.BytesIO()
    book.save(data)
    file, validation = payout_batches.batch_upload(
        upload=csv_upload(data.getvalue(), name="batch.xlsx"), by=maker
    )
    assert validation.ok and file.name == "batch.xlsx"
    batch = payout_batches.batch_create(file=file, by=maker, sender=sender)
    assert (batch.count, batch.total) == (2, Decimal("1325.50"))
    assert sorted(batch.payouts.values_list("amount", flat=True)) == [
        Decimal("75.00"),
        Decimal("1250.50"),
    ]


def test_a_payout_changed_behind_the_batch_voids_its_approval(maker, approver, recipient, sender):
    batch = submit(maker, rows_for(recipient, 2), sender=sender)
    Payout.objects.filter(pk=batch.payouts.first().pk).update(amount=Decimal("9999.00"))
    with pytest.raises(BatchError, match="asked for again"):
        payout_batches.batch_approve(batch=batch, by=approver)
    assert AuditEvent.objects.filter(action="payout_batch.reasked").count() == 1
    assert not PayoutOutbox.objects.exists()


def test_an_approval_tampered_with_after_it_was_given_sends_nothing(
    maker, approver, recipient, sender, settings
):
    batch = approve(submit(maker, rows_for(recipient, 2), sender=sender), approver)
    payload = batch.approval.payload
    code = next(iter(payload["payouts"]))
    payload["payouts"][code] = "0" * 64
    Approval.objects.filter(pk=batch.approval_id).update(payload=payload)
    batch = send_all(batch, settings)
    assert set(withdrawals_per_code(batch).values()) == {0}
    assert set(batch.payouts.values_list("state", flat=True)) == {PState.AWAITING_APPROVAL}


def test_a_single_payout_limited_by_a_429_is_sent_once_on_the_tasks_retry(
    maker, approver, recipient, sender, settings, app_sandbox
):
    payout = payouts.payout_create(
        by=maker,
        recipient=recipient,
        sender=sender,
        amount=Decimal("25.00"),
        reference="INV 429",
        reason="SERVICES",
    )
    payouts.payout_approve(payout=payout, by=approver)
    outbox = PayoutOutbox.objects.get(payout=payout)
    app_sandbox.faults(rate_limit_429=1, operations=["createWithdrawal"], limit=1)
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the retry after Retry-After runs at once
    assert tasks.payout_submit.delay(outbox.pk).get() == PayoutOutbox.State.SUBMITTED
    outbox.refresh_from_db()
    assert outbox.attempts == 2
    assert len(flashfx_client().withdrawals(externalId=payout.code)) == 1


def test_a_batch_whose_message_after_approval_was_lost_is_sent_by_the_sweeps(
    maker, approver, recipient, sender, settings, app_sandbox
):
    columns = ("recipient_id", *INLINE)
    rows = rows_for(recipient, 3) + [
        {"account_name": "Jo Citizen", "payid": "jo@example.com", "amount": "42.00",
         "reference": "REFUND 1193"}
    ]  # fmt: skip
    batch = approve(submit(maker, rows, sender=sender, columns=columns), approver)
    assert payout_batches.batches_due(stuck_after=timedelta(minutes=2)) == [batch.pk]  # row 5
    long_ago = timezone.now() - timedelta(minutes=10)
    PayoutOutbox.objects.update(created_at=long_ago)
    PayoutBatch.objects.filter(pk=batch.pk).update(approved_at=long_ago)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    tasks.payouts_sweep()  # the payouts named in the file go, as any approved payout
    assert set(withdrawals_per_code(batch).values()) == {0, 1}
    batch.refresh_from_db()
    assert batch.state == State.APPROVED  # its row with bank details has no payout yet
    tasks.payout_batches_sweep()
    batch.refresh_from_db()
    assert batch.state == State.DONE
    assert set(withdrawals_per_code(batch).values()) == {1}


def test_a_batch_sent_whole_by_the_payouts_sweep_is_settled_by_the_batch_sweep(
    maker, approver, recipient, sender, settings
):
    batch = approve(submit(maker, rows_for(recipient, 3), sender=sender), approver)
    long_ago = timezone.now() - timedelta(minutes=10)
    PayoutOutbox.objects.update(created_at=long_ago)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    tasks.payouts_sweep()
    assert payout_batches.batches_due(stuck_after=timedelta(minutes=2)) == []  # not stuck yet
    assert tasks.payout_batches_sweep() == {"due": 0, "done": 1}
    batch.refresh_from_db()
    assert batch.state == State.DONE
    assert set(withdrawals_per_code(batch).values()) == {1}
