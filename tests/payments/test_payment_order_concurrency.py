"""International payments at the same moment on PostgreSQL: two approvers signing at once (one
decision, one outbox row), and two workers running the same send at once (one createPayment,
one payment at the sandbox). Real threads, each with its own database connection, released
together from a barrier. SQLite serialises every write transaction: no race to test there."""

from __future__ import annotations

import pytest
from django.db import connection
from harness import race
from payment_order_support import (
    payment_calls,
    payments_at_flashfx,
    propose_payment,
    recipient_abroad,
)
from payout_support import fund, sender_at_flashfx
from refund_support import app_at, log_calls
from staff import make_staff

from payments.models import ApprovalSignature, PaymentOrder, PaymentOrderOutbox
from payments.services import payment_orders

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


def test_two_approvers_at_once_on_a_one_approver_payment_make_one_decision(app_sandbox):
    maker = make_staff("operator")
    alice, bob = make_staff("approver", "alice"), make_staff("approver", "bob")
    order = propose_payment(maker, recipient=recipient_abroad(), sender=sender_at_flashfx())
    results = race(
        lambda: payment_orders.payment_order_approve(order=order, by=alice),
        lambda: payment_orders.payment_order_approve(order=order, by=bob),
    )
    refused = [r for r in results if isinstance(r, payment_orders.PaymentOrderError)]
    assert len(refused) == 1, results
    assert PaymentOrder.objects.get().state == "approved"
    assert ApprovalSignature.objects.count() == 1
    assert PaymentOrderOutbox.objects.count() == 1


def test_two_approvers_at_once_on_a_two_approver_payment_both_count_once(app_sandbox, settings):
    settings.PAYOUT_APPROVAL_TIERS = "*:2"
    maker = make_staff("operator")
    alice, bob = make_staff("approver", "alice"), make_staff("approver", "bob")
    order = propose_payment(maker, recipient=recipient_abroad())
    assert order.approval.required == 2
    results = race(
        lambda: payment_orders.payment_order_approve(order=order, by=alice),
        lambda: payment_orders.payment_order_approve(order=order, by=bob),
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert PaymentOrder.objects.get().state == "approved"  # the second signature decided
    assert ApprovalSignature.objects.count() == 2
    assert PaymentOrderOutbox.objects.count() == 1


def test_two_workers_sending_the_same_payment_at_once_make_one_call(app_sandbox, caplog):
    log_calls(caplog)
    fund(app_sandbox)
    maker, approver = make_staff("operator"), make_staff("approver")
    order = propose_payment(maker, recipient=recipient_abroad())
    payment_orders.payment_order_approve(order=order, by=approver)
    outbox = PaymentOrderOutbox.objects.get()
    outcomes = race(
        lambda: payment_orders.payment_order_submit(outbox.pk),
        lambda: payment_orders.payment_order_submit(outbox.pk),
    )
    # One sends; the other passes the row by (held, or sent already) and says how it found it.
    assert sorted(map(str, outcomes)) in (
        ["approved", "submitted"],
        ["submitted", "submitting"],
        ["submitted", "submitted"],
    ), outcomes
    assert len(payment_calls(caplog)) == 1
    assert len(payments_at_flashfx(order.code)) == 1
    assert PaymentOrder.objects.get().state == "submitted"
