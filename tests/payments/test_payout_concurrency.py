"""Payouts at the same moment on PostgreSQL: two approvers signing at once (one decision, one
outbox row), and two workers running the same send at once (one createWithdrawal, one
withdrawal at the sandbox). Real threads, each with its own database connection, released
together from a barrier. SQLite serialises every write transaction, so there is no race to
test there."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from harness import race
from payout_support import (
    create_calls,
    fund,
    propose,
    recipient_at_flashfx,
    sender_at_flashfx,
    withdrawals_at_flashfx,
)
from refund_support import app_at, log_calls
from staff import make_staff

from payments.models import ApprovalSignature, Payout, PayoutOutbox
from payments.services import payouts

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="PostgreSQL only: real concurrent transactions"
    ),
]


@pytest.fixture
def app_sandbox(sandbox, settings):
    with app_at(sandbox, settings):
        yield sandbox


def test_two_approvers_at_once_on_a_one_approver_payout_make_one_decision(app_sandbox):
    maker = make_staff("operator")
    alice, bob = make_staff("approver", "alice"), make_staff("approver", "bob")
    payout = propose(
        maker,
        recipient=recipient_at_flashfx(),
        sender=sender_at_flashfx(),
        amount="100.00",
    )
    results = race(
        lambda: payouts.payout_approve(payout=payout, by=alice),
        lambda: payouts.payout_approve(payout=payout, by=bob),
    )
    refused = [r for r in results if isinstance(r, payouts.PayoutError)]
    assert len(refused) == 1, results
    assert "already approved" in str(refused[0])
    assert Payout.objects.get().state == "approved"
    assert ApprovalSignature.objects.count() == 1
    assert PayoutOutbox.objects.count() == 1


def test_two_approvers_at_once_on_a_two_approver_payout_both_count_once(app_sandbox):
    maker = make_staff("operator")
    alice, bob = make_staff("approver", "alice"), make_staff("approver", "bob")
    payout = propose(
        maker,
        recipient=recipient_at_flashfx(),
        sender=sender_at_flashfx(),
        amount="20000.00",
    )
    results = race(
        lambda: payouts.payout_approve(payout=payout, by=alice),
        lambda: payouts.payout_approve(payout=payout, by=bob),
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert Payout.objects.get().state == "approved"  # the second signature decided
    assert ApprovalSignature.objects.count() == 2
    assert PayoutOutbox.objects.count() == 1


def test_two_workers_sending_the_same_payout_at_once_make_one_call(app_sandbox, caplog):
    log_calls(caplog)
    fund(app_sandbox)
    maker, approver = make_staff("operator"), make_staff("approver")
    payout = propose(
        maker,
        recipient=recipient_at_flashfx(),
        sender=sender_at_flashfx(),
        amount=str(Decimal("300.00")),
    )
    payouts.payout_approve(payout=payout, by=approver)
    outbox = PayoutOutbox.objects.get()
    outcomes = race(
        lambda: payouts.payout_submit(outbox.pk), lambda: payouts.payout_submit(outbox.pk)
    )
    # One sends; the other passes the row by (held, or sent already) and says how it found it.
    assert sorted(map(str, outcomes)) in (
        ["approved", "submitted"],
        ["submitted", "submitting"],
        ["submitted", "submitted"],
    )
    assert len(create_calls(caplog)) == 1
    assert len(withdrawals_at_flashfx(payout.code)) == 1
    assert Payout.objects.get().state == "submitted"
