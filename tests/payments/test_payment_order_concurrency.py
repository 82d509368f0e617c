"""International payments at the same moment on PostgreSQL (SQLite serialises every write
transaction: no race there). Two approvers sign at once: one decision and one outbox row, on a
one-approver and on a two-approver tier. Two workers run the same send at once: one
createPayment, one payment at the sandbox under the order's code. Real threads with their own
database connections, released together (harness.race)."""

from __future__ import annotations

import pytest
from django.db import connection
from harness import race
from payment_order_support import payment_calls, payments_at_flashfx, propose_payment
from payment_order_support import recipient_abroad as abroad
from payout_support import fund
from refund_support import app_at, log_calls
from staff import make_staff

from payments.models import ApprovalSignature, PaymentOrder, PaymentOrderOutbox
from payments.services import payment_orders

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def at_sandbox(sandbox, settings):
    """PostgreSQL only; the app's client at the sandbox, nothing moving there by itself."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: real concurrent transactions")
    with app_at(sandbox, settings):
        yield sandbox


@pytest.mark.parametrize(("tiers", "refused", "signatures"), [("*:1", 1, 1), ("*:2", 0, 2)])
def test_two_approvers_at_once_make_one_decision(at_sandbox, settings, tiers, refused, signatures):
    """One signature needed: one of them is told no. Two needed: both count, once each, and
    the second decides."""
    settings.PAYOUT_APPROVAL_TIERS = tiers
    order = propose_payment(make_staff("operator"), recipient=abroad())
    checkers = make_staff("approver", "alice"), make_staff("approver", "bob")
    outcomes = race(
        *(lambda by=by: payment_orders.payment_order_approve(order=order, by=by) for by in checkers)
    )
    assert [isinstance(o, Exception) for o in outcomes].count(True) == refused, outcomes
    assert all(isinstance(o, (PaymentOrder, payment_orders.PaymentOrderError)) for o in outcomes)
    assert PaymentOrder.objects.get().state == PaymentOrder.State.APPROVED
    assert ApprovalSignature.objects.count() == signatures
    assert PaymentOrderOutbox.objects.count() == 1


def test_two_workers_sending_the_same_payment_at_once_make_one_call(at_sandbox, caplog):
    log_calls(caplog)
    fund(at_sandbox)
    order = propose_payment(make_staff("operator"), recipient=abroad())
    payment_orders.payment_order_approve(order=order, by=make_staff("approver"))
    row = PaymentOrderOutbox.objects.get().pk
    outcomes = race(*(lambda: payment_orders.payment_order_submit(row) for _ in range(2)))
    # One sends; the other passes the row by (held, or sent already) and says how it found it.
    assert sorted(map(str, outcomes)) in (
        ["approved", "submitted"],
        ["submitted", "submitting"],
        ["submitted", "submitted"],
    ), outcomes
    assert len(payment_calls(caplog)) == 1
    assert len(payments_at_flashfx(order.code)) == 1
    assert PaymentOrder.objects.get().state == PaymentOrder.State.SUBMITTED
