"""Two members rejecting the same deposit at the same moment, and two workers sending the same
refund at once: one refund, one refundDeposit call. Real threads, each with its own database
connection (a transactional test database), racing from a barrier."""

from __future__ import annotations

from decimal import Decimal

import pytest
from harness import race
from refund_support import app_at, confirmed_deposit, log_calls, refund_calls
from staff import make_staff

from payments.models import DepositRefund
from payments.services import refunds

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def app_sandbox(sandbox, settings):
    with app_at(sandbox, settings):
        yield sandbox


def test_two_members_rejecting_at_once_make_one_refund_and_one_call(app_sandbox, caplog):
    log_calls(caplog)
    deposit = confirmed_deposit(app_sandbox, "300.00")
    alice, bob = make_staff("operator", "alice"), make_staff("operator", "bob")

    def reject(by):
        return lambda: refunds.deposit_refund_request(
            deposit=deposit, amount=Decimal("300.00"), reason_code="duplicate", by=by
        )

    results = race(reject(alice), reject(bob))
    made = [r for r in results if isinstance(r, DepositRefund)]
    refused = [r for r in results if isinstance(r, refunds.RefundError)]
    assert len(made) == 1 and len(refused) == 1, results
    assert "already being refunded" in str(refused[0])
    assert DepositRefund.objects.count() == 1

    # Two workers got the same task (a redelivery): one claims it, one call goes out.
    refund = made[0]
    outcomes = race(
        lambda: refunds.deposit_refund_send(refund), lambda: refunds.deposit_refund_send(refund)
    )
    assert sorted(map(str, outcomes)) in (["sending", "sent"], ["sent", "sent"]), outcomes
    assert len(refund_calls(caplog)) == 1
    assert DepositRefund.objects.get().state == "sent"
    assert app_sandbox.deposit_status(deposit.flashfx_id) == "REFUNDING"
