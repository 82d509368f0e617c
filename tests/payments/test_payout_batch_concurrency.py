"""Batches at the same moment on PostgreSQL: two approvers signing at once (one decision, one
outbox row per payout), the maker withdrawing while an approver signs (one wins, whole), two
drains sending the same batch at once (one createWithdrawal per payout), and two preparers
making the same batch's recipients (one recipient per row at FlashFX). Real threads, each with
its own database connection, released together from a barrier (harness.race)."""

from __future__ import annotations

import pytest
from batch_support import approve, rows_for, submit, withdrawals_per_code
from django.db import connection
from harness import race
from payout_support import create_calls, fund, recipient_at_flashfx, sender_at_flashfx
from refund_support import app_at, log_calls
from staff import make_staff

from mirrors.client import flashfx_client
from payments.models import ApprovalSignature, Payout, PayoutBatch, PayoutOutbox
from payments.services import payout_batches
from payments.services.payout_batches import BatchError

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="PostgreSQL only: real concurrent transactions"
    ),
]
State = PayoutBatch.State


@pytest.fixture
def app_sandbox(sandbox, settings):
    with app_at(sandbox, settings):
        fund(sandbox)
        yield sandbox


@pytest.fixture
def people():
    return (
        make_staff("operator"),
        make_staff("approver", "alice"),
        make_staff("approver", "bob"),
    )


def test_two_approvers_at_once_on_a_one_approver_batch_make_one_decision(app_sandbox, people):
    maker, alice, bob = people
    batch = submit(maker, rows_for(recipient_at_flashfx(), 5), sender=sender_at_flashfx())
    results = race(
        lambda: payout_batches.batch_approve(batch=batch, by=alice),
        lambda: payout_batches.batch_approve(batch=batch, by=bob),
    )
    refused = [r for r in results if isinstance(r, BatchError)]
    assert len(refused) == 1, results
    batch.refresh_from_db()
    assert batch.state == State.APPROVED
    assert ApprovalSignature.objects.count() == 1
    assert PayoutOutbox.objects.count() == 5
    assert set(Payout.objects.values_list("state", flat=True)) == {"approved"}


def test_two_approvers_at_once_on_a_two_approver_batch_both_count_once(app_sandbox, people):
    maker, alice, bob = people
    rows = rows_for(recipient_at_flashfx(), 3, amount="5000.00")  # total above 10,000.00
    batch = submit(maker, rows, sender=sender_at_flashfx())
    assert batch.approval.required == 2
    results = race(
        lambda: payout_batches.batch_approve(batch=batch, by=alice),
        lambda: payout_batches.batch_approve(batch=batch, by=bob),
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    batch.refresh_from_db()
    assert batch.state == State.APPROVED
    assert ApprovalSignature.objects.count() == 2
    assert PayoutOutbox.objects.count() == 3


def test_withdrawing_while_an_approver_signs_is_one_or_the_other(app_sandbox, people):
    maker, alice, _ = people
    batch = submit(maker, rows_for(recipient_at_flashfx(), 4), sender=sender_at_flashfx())
    results = race(
        lambda: payout_batches.batch_approve(batch=batch, by=alice),
        lambda: payout_batches.batch_cancel(batch=batch, by=maker),
    )
    assert len([r for r in results if isinstance(r, BatchError)]) == 1, results
    batch.refresh_from_db()
    states = set(Payout.objects.values_list("state", flat=True))
    if batch.state == State.APPROVED:
        assert states == {"approved"} and PayoutOutbox.objects.count() == 4
    else:
        assert batch.state == State.CANCELLED
        assert states == {"cancelled"} and not PayoutOutbox.objects.exists()


def test_two_drains_at_once_send_each_payout_once(app_sandbox, people, settings, caplog):
    log_calls(caplog)
    settings.PAYOUT_SEND_GROUP = 3
    maker, alice, _ = people
    batch = approve(
        submit(maker, rows_for(recipient_at_flashfx(), 12), sender=sender_at_flashfx()), alice
    )
    payout_batches.batch_prepare(batch)

    def drain():
        taken = 0
        while (outcomes := payout_batches.batch_send_next(batch)) is not None:
            taken += len(outcomes)
        return taken

    results = race(drain, drain)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert len(create_calls(caplog)) == 12
    assert set(withdrawals_per_code(batch).values()) == {1}
    assert payout_batches.batch_settle() == [batch.code]


def test_two_preparers_at_once_make_each_recipient_once(app_sandbox, people):
    maker, alice, _ = people
    columns = ("account_name", "payid", "amount", "reference")
    rows = [
        {"account_name": f"Payee {i}", "payid": f"payee{i}@example.com", "amount": "10.00",
         "reference": f"REF {i}"}
        for i in range(4)
    ]  # fmt: skip
    batch = approve(submit(maker, rows, sender=sender_at_flashfx(), columns=columns), alice)
    results = race(
        lambda: payout_batches.batch_prepare(batch),
        lambda: payout_batches.batch_prepare(batch),
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == 4, (
        results,
        list(batch.rows.values_list("row_number", "payout_id", "error")),
    )
    for row in batch.rows.all():
        found = flashfx_client().recipients(externalId=f"{batch.code}-R{row.row_number}")
        assert len(found) == 1
    assert Payout.objects.filter(batch=batch).count() == 4
