"""The answer to one of our calls is FlashFX's version as it was when we asked, at the latest:
it is dated then, not when the answer arrived. Otherwise a move FlashFX made while the answer
travelled (a refund REFUNDING then REFUNDED at once; found by tests/chaos) reaches us by
webhook dated before the answer, is dropped as stale, and the mirror keeps the older status
until the next sync."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone
from payout_support import fund, propose, recipient_at_flashfx, sender_at_flashfx
from refund_support import app_at, confirmed_deposit
from staff import make_staff

from mirrors.client import flashfx_client
from mirrors.registry import registry
from payments.models import Deposit, Payout, PayoutOutbox, Withdrawal
from payments.services import payouts, refunds

pytestmark = pytest.mark.django_db


@pytest.fixture
def app_sandbox(sandbox, settings):
    with app_at(sandbox, settings):
        yield sandbox


@pytest.fixture
def returned_at(monkeypatch):
    """When each named client call returned (the real call, timed: nothing else changes)."""
    seen: dict[str, object] = {}

    def timed(name):
        real = getattr(type(flashfx_client()), name)

        def call(self, *args, **kwargs):
            answer = real(self, *args, **kwargs)
            seen[name] = timezone.now()
            return answer

        monkeypatch.setattr(type(flashfx_client()), name, call)

    seen["time"] = timed
    return seen


def test_a_refund_answer_is_dated_when_we_asked(app_sandbox, returned_at):
    deposit = confirmed_deposit(app_sandbox, "120.00")
    refund = refunds.deposit_refund_request(
        deposit=deposit,
        amount=Decimal("120.00"),
        reason_code="duplicate",
        by=make_staff("operator", "olive"),
    )
    returned_at["time"]("refund_deposit")
    refunds.deposit_refund_send(refund)
    mirrored = Deposit.objects.get(pk=deposit.pk)
    assert mirrored.flashfx_status == "REFUNDING"
    assert mirrored.remote_changed_at < returned_at["refund_deposit"]

    # FlashFX completes the refund at once; its webhook is dated before our answer arrived.
    assert app_sandbox.advance("deposits", deposit.flashfx_id, "REFUNDED").status_code == 200
    wire = flashfx_client().deposit(deposit.flashfx_id)
    outcome = registry.get("deposits").apply(
        wire, observed_at=returned_at["refund_deposit"], source="webhook"
    )
    assert outcome.outcome == "updated"
    assert Deposit.objects.get(pk=deposit.pk).flashfx_status == "REFUNDED"


def test_a_payout_answer_is_dated_when_we_asked(app_sandbox, returned_at):
    fund(app_sandbox)
    payout = propose(
        make_staff("operator"), recipient=recipient_at_flashfx(), sender=sender_at_flashfx()
    )
    payouts.payout_approve(payout=payout, by=make_staff("approver"))
    returned_at["time"]("create_withdrawal")
    payouts.payout_submit(PayoutOutbox.objects.get(payout=payout).pk)
    payout = Payout.objects.select_related("withdrawal").get(pk=payout.pk)
    assert payout.state == Payout.State.SUBMITTED
    assert payout.withdrawal.remote_changed_at < returned_at["create_withdrawal"]
    assert Withdrawal.objects.count() == 1
