"""Payouts approved together go out together: one worker's send claims its own outbox row and
up to PAYOUT_SEND_GROUP - 1 other approved ones in one transaction, makes one createWithdrawal
each, and records the answers together; each payout still has its own events, audit rows and
exactly one withdrawal, and a send whose row went in another's group makes no call."""

from __future__ import annotations

import pytest
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

from backoffice import audit
from backoffice.models import AuditEvent
from payments import tasks
from payments.models import Payout, PayoutOutbox
from payments.services import payouts

pytestmark = pytest.mark.django_db
State = Payout.State


@pytest.fixture
def app_sandbox(sandbox, settings):
    with app_at(sandbox, settings):
        yield sandbox


@pytest.fixture
def approved(app_sandbox):
    """n payouts approved one by one (each its own outbox row), none sent yet."""
    recipient, sender = recipient_at_flashfx(), sender_at_flashfx()
    maker, approver = make_staff("operator"), make_staff("approver")

    def make(*amounts: str) -> list[PayoutOutbox]:
        boxes = []
        for n, amount in enumerate(amounts):
            payout = propose(
                maker, recipient=recipient, sender=sender, amount=amount, reference=f"INV {n}"
            )
            payouts.payout_approve(payout=payout, by=approver)
            boxes.append(PayoutOutbox.objects.get(payout=payout))
        return boxes

    return make


def test_payouts_approved_together_go_out_as_one_group(app_sandbox, approved, caplog):
    log_calls(caplog)
    fund(app_sandbox)
    boxes = approved("100.00", "200.00", "300.00")
    audit_rows = AuditEvent.objects.count()

    outcomes = payouts.payouts_send(boxes[1].pk)

    assert outcomes == {box.pk: "submitted" for box in boxes}
    assert len(create_calls(caplog)) == 3
    for box in boxes:
        payout = Payout.objects.select_related("withdrawal").get(pk=box.payout_id)
        held = withdrawals_at_flashfx(payout.code)
        assert len(held) == 1
        assert payout.state == State.SUBMITTED and payout.withdrawal.flashfx_id == held[0].id
        moves = [(e.from_state, e.to_state) for e in payout.events.order_by("pk")][-2:]
        assert moves == [("approved", "submitting"), ("submitting", "submitted")]
        assert PayoutOutbox.objects.get(pk=box.pk).attempts == 1
    # Each payout's two moves are audited, appended in one piece each, and the chain holds.
    added = AuditEvent.objects.order_by("-pk")[:6]
    assert sorted(e.action for e in added) == ["payout.submitted"] * 3 + ["payout.submitting"] * 3
    assert AuditEvent.objects.count() == audit_rows + 6
    assert audit.verify_chain()[2] == []

    # The tasks of the other two rows find them sent: no call.
    assert tasks.payout_submit.apply(args=(boxes[0].pk,)).get() == "submitted"
    assert payouts.payout_submit(boxes[2].pk) == "submitted"
    assert len(create_calls(caplog)) == 3


def test_a_group_holds_at_most_PAYOUT_SEND_GROUP_its_own_row_first(
    app_sandbox, approved, settings, caplog
):
    log_calls(caplog)
    fund(app_sandbox)
    settings.PAYOUT_SEND_GROUP = 2
    first, second, third = approved("100.00", "200.00", "300.00")

    assert payouts.payouts_send(third.pk) == {third.pk: "submitted", first.pk: "submitted"}
    assert PayoutOutbox.objects.get(pk=second.pk).state == "approved"
    assert payouts.payout_submit(second.pk) == "submitted"
    assert len(create_calls(caplog)) == 3


def test_a_refusal_in_a_group_fails_that_payout_alone(app_sandbox, approved, caplog):
    log_calls(caplog)
    fund(app_sandbox, "1000.00")  # the second one does not fit in what is left
    boxes = approved("600.00", "700.00", "300.00")

    outcomes = payouts.payouts_send(boxes[0].pk)

    assert [outcomes[box.pk] for box in boxes] == ["submitted", "submit_failed", "submitted"]
    refused = Payout.objects.get(pk=boxes[1].payout_id)
    assert (refused.state, refused.error_code) == (State.SUBMIT_FAILED, "INSUFFICIENT_FUNDS")
    assert withdrawals_at_flashfx(refused.code) == []
    assert [Payout.objects.get(pk=b.payout_id).state for b in (boxes[0], boxes[2])] == [
        State.SUBMITTED,
        State.SUBMITTED,
    ]
    assert len(create_calls(caplog)) == 3
