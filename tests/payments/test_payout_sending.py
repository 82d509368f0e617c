"""Sending an approved payout to FlashFX exactly once, against the sandbox with the
back-office's real client: the outbox claim, a task run twice, no answer (commit then drop, a
500) settled by looking the withdrawal up by externalId before any new attempt, a worker that
died after its claim or after the call, a refusal, a recipient changed after approval, and
FlashFX's later news (a bank return keeps the fee; a technical cancellation may go again)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
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

from mirrors.client import flashfx_client
from mirrors.registry import registry
from parties.models import Recipient
from payments import tasks
from payments.models import Payout, PayoutOutbox, Withdrawal
from payments.services import payouts
from payments.services.payouts import PayoutError

pytestmark = pytest.mark.django_db
State = Payout.State


@pytest.fixture
def app_sandbox(sandbox, settings):
    with app_at(sandbox, settings):
        yield sandbox


@pytest.fixture
def parties(app_sandbox):
    return recipient_at_flashfx(), sender_at_flashfx()


@pytest.fixture
def maker():
    return make_staff("operator")


@pytest.fixture
def approver():
    return make_staff("approver")


def approved(maker, approver, parties, **kw):
    recipient, sender = parties
    payout = propose(maker, recipient=recipient, sender=sender, **kw)
    payouts.payout_approve(payout=payout, by=approver)
    payout.refresh_from_db()
    assert payout.state == State.APPROVED
    return payout, PayoutOutbox.objects.get(payout=payout)


def settled(outbox):
    """As if the last claim was long ago: recovery need not wait for a call still running."""
    PayoutOutbox.objects.filter(pk=outbox.pk).update(
        claimed_at=timezone.now() - timedelta(minutes=5)
    )


def mirror_withdrawal(flashfx_id):
    wire = flashfx_client().withdrawal(flashfx_id)
    registry.get("withdrawals").apply(wire, observed_at=timezone.now(), source="sync")
    return Withdrawal.objects.get(flashfx_id=flashfx_id)


def test_an_approved_payout_is_sent_once_with_its_code_as_key_and_linked(
    app_sandbox, parties, maker, approver, caplog
):
    log_calls(caplog)
    fund(app_sandbox)
    payout, outbox = approved(maker, approver, parties, amount="250.00")
    assert create_calls(caplog) == []  # approving sends nothing itself

    assert payouts.payout_submit(outbox.pk) == "submitted"
    assert len(create_calls(caplog)) == 1
    payout.refresh_from_db()
    outbox.refresh_from_db()
    assert (payout.state, outbox.state, outbox.attempts) == ("submitted", "submitted", 1)
    withdrawal = payout.withdrawal
    assert withdrawal.external_id == payout.code
    assert (withdrawal.amount, withdrawal.flashfx_status) == (Decimal("250.00"), "INITIALISED")
    at_flashfx = app_sandbox.withdrawal(withdrawal.flashfx_id)
    assert at_flashfx["externalId"] == payout.code
    assert at_flashfx["externalReference"] == "INV 1042"
    assert [(e.from_state, e.to_state) for e in payout.events.all()] == [
        ("", "awaiting_approval"),
        ("awaiting_approval", "approved"),
        ("approved", "submitting"),
        ("submitting", "submitted"),
    ]


def test_the_task_run_twice_makes_one_call(app_sandbox, parties, maker, approver, caplog):
    log_calls(caplog)
    fund(app_sandbox)
    payout, outbox = approved(maker, approver, parties)
    assert tasks.payout_submit.apply(args=(outbox.pk,)).get() == "submitted"
    assert tasks.payout_submit.apply(args=(outbox.pk,)).get() == "submitted"  # redelivered
    assert payouts.payout_submit(outbox.pk) == "submitted"
    assert len(create_calls(caplog)) == 1
    assert len(withdrawals_at_flashfx(payout.code)) == 1


def test_commit_then_drop_is_settled_by_finding_it_not_by_creating_again(
    app_sandbox, parties, maker, approver, caplog
):
    log_calls(caplog)
    fund(app_sandbox)
    payout, outbox = approved(maker, approver, parties)
    # FlashFX creates the withdrawal, then the connection drops before its answer arrives.
    app_sandbox.faults(commit_then_drop=1, operations=["createWithdrawal"], limit=1)
    assert payouts.payout_submit(outbox.pk) == "unknown"
    payout.refresh_from_db()
    assert payout.state == State.SUBMITTING and payout.withdrawal is None
    # Sending again is a no-op; recovery waits while the call might still be running.
    assert payouts.payout_submit(outbox.pk) == "submitting"
    assert payouts.payout_recover(outbox.pk) == "wait"
    settled(outbox)
    assert payouts.payout_recover(outbox.pk) == "submitted"
    assert len(create_calls(caplog)) == 1
    found = withdrawals_at_flashfx(payout.code)
    assert len(found) == 1
    payout.refresh_from_db()
    assert payout.state == State.SUBMITTED and payout.withdrawal.flashfx_id == found[0].id


def test_a_call_that_never_took_is_made_again_with_the_same_key_after_a_look_up(
    app_sandbox, parties, maker, approver, caplog
):
    log_calls(caplog)
    fund(app_sandbox)
    payout, outbox = approved(maker, approver, parties)
    app_sandbox.faults(http_500=1, operations=["createWithdrawal"], limit=1)
    assert payouts.payout_submit(outbox.pk) == "unknown"  # a 500 proves nothing either way
    settled(outbox)
    assert payouts.payout_recover(outbox.pk) == "submitted"  # not found, so sent again
    outbox.refresh_from_db()
    assert outbox.attempts == 2
    assert len(create_calls(caplog)) == 2
    assert len(withdrawals_at_flashfx(payout.code)) == 1


def test_a_worker_that_died_after_its_claim_is_recovered_by_the_sweep(
    app_sandbox, parties, maker, approver, settings, caplog
):
    log_calls(caplog)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    fund(app_sandbox)
    payout, outbox = approved(maker, approver, parties)
    # The claim committed, then the worker died before its call.
    PayoutOutbox.objects.filter(pk=outbox.pk).update(
        state="submitting", attempts=1, claimed_at=timezone.now() - timedelta(minutes=5)
    )
    Payout.objects.filter(pk=payout.pk).update(state="submitting")
    assert tasks.payouts_sweep.apply().get() == {"approved": 0, "submitting": 1}
    assert Payout.objects.get(pk=payout.pk).state == State.SUBMITTED
    assert len(create_calls(caplog)) == 1
    assert len(withdrawals_at_flashfx(payout.code)) == 1


def test_a_worker_that_died_after_the_call_before_our_commit_is_found_not_sent_again(
    app_sandbox, parties, maker, approver, caplog
):
    log_calls(caplog)
    fund(app_sandbox)
    payout, outbox = approved(maker, approver, parties)
    PayoutOutbox.objects.filter(pk=outbox.pk).update(
        state="submitting", attempts=1, claimed_at=timezone.now() - timedelta(minutes=5)
    )
    Payout.objects.filter(pk=payout.pk).update(state="submitting")
    flashfx_client().create_withdrawal(  # the call the dead worker made
        {**outbox.request, "amount": Decimal(outbox.request["amount"])}
    )
    caplog.clear()
    assert payouts.payout_recover(outbox.pk) == "submitted"
    assert create_calls(caplog) == []
    assert len(withdrawals_at_flashfx(payout.code)) == 1


def test_the_sweep_sends_an_approved_payout_whose_message_was_lost(
    app_sandbox, parties, maker, approver, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    fund(app_sandbox)
    payout, outbox = approved(maker, approver, parties)
    assert tasks.payouts_sweep.apply().get() == {"approved": 0, "submitting": 0}  # not yet
    PayoutOutbox.objects.filter(pk=outbox.pk).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    assert tasks.payouts_sweep.apply().get() == {"approved": 1, "submitting": 0}
    assert Payout.objects.get(pk=payout.pk).state == State.SUBMITTED


def test_a_refusal_is_submit_failed_with_flashfxs_code_and_message(
    app_sandbox, parties, maker, approver, caplog
):
    log_calls(caplog)  # no money on the balance
    payout, outbox = approved(maker, approver, parties, amount="500.00")
    assert payouts.payout_submit(outbox.pk) == "submit_failed"
    payout.refresh_from_db()
    assert (payout.state, payout.error_code) == (State.SUBMIT_FAILED, "INSUFFICIENT_FUNDS")
    assert payout.error_message
    assert payouts.payout_submit(outbox.pk) == "submit_failed"
    assert len(create_calls(caplog)) == 1
    assert withdrawals_at_flashfx(payout.code) == []


def test_recipient_bank_details_changed_after_approval_never_send(
    app_sandbox, parties, maker, approver, caplog
):
    log_calls(caplog)
    fund(app_sandbox)
    payout, outbox = approved(maker, approver, parties)
    first = payout.approval
    # Sync brings new bank details for the recipient after the approval.
    Recipient.objects.filter(pk=payout.recipient_id).update(account_no="87654321")
    assert payouts.payout_submit(outbox.pk) == "voided"
    assert create_calls(caplog) == []
    payout.refresh_from_db()
    assert payout.state == State.AWAITING_APPROVAL
    assert payout.approval != first and first.__class__.objects.get(pk=first.pk).state == (
        "cancelled"
    )
    assert payout.approval.payload["recipient"]["account_no"] == "87654321"
    last = payout.events.last()
    assert (last.from_state, last.to_state) == ("approved", "awaiting_approval")
    assert "no longer matches" in last.detail
    assert withdrawals_at_flashfx(payout.code) == []
    # Approved again, under the new details, it goes out.
    payouts.payout_approve(payout=payout, by=approver)
    again = PayoutOutbox.objects.get(payout=payout, state="approved")
    assert payouts.payout_submit(again.pk) == "submitted"
    assert len(create_calls(caplog)) == 1


def test_a_bank_return_shows_refunded_with_the_fee_kept(app_sandbox, parties, maker, approver):
    fund(app_sandbox)
    payout, outbox = approved(maker, approver, parties)
    payouts.payout_submit(outbox.pk)
    flashfx_id = Payout.objects.get(pk=payout.pk).withdrawal.flashfx_id
    for status in ("PENDING", "CONFIRMED", "FAILED", "REFUNDED"):
        assert app_sandbox.advance("withdrawals", flashfx_id, status).status_code == 200
    withdrawal = mirror_withdrawal(flashfx_id)
    assert withdrawal.flashfx_status == "REFUNDED"
    assert withdrawal.total_fee == Decimal("1.00")
    payout.refresh_from_db()
    assert payout.state == State.SUBMITTED and payout.withdrawal == withdrawal
    assert not payouts.resend_allowed(payout)


def test_a_technical_cancellation_may_be_sent_again_as_a_new_payout(
    app_sandbox, parties, maker, approver
):
    fund(app_sandbox)
    payout, outbox = approved(maker, approver, parties)
    payouts.payout_submit(outbox.pk)
    flashfx_id = Payout.objects.get(pk=payout.pk).withdrawal.flashfx_id
    app_sandbox.advance("withdrawals", flashfx_id, "PENDING")
    app_sandbox.advance("withdrawals", flashfx_id, "FAILED")
    app_sandbox.advance("withdrawals", flashfx_id, "CANCELLED", rejectCode="TECHNICAL_ISSUE")
    mirror_withdrawal(flashfx_id)
    payout.refresh_from_db()
    assert payouts.resend_allowed(payout)
    again = payouts.payout_send_again(payout=payout, by=maker)
    assert again.code != payout.code and again.resent_from == payout
    assert again.state == State.AWAITING_APPROVAL
    assert (again.amount, again.reference) == (payout.amount, payout.reference)
    with pytest.raises(PayoutError, match="already sent again"):
        payouts.payout_send_again(payout=payout, by=maker)


def test_a_webhook_before_our_reply_links_the_payout_too(app_sandbox, parties, maker, approver):
    """The mirror's on_change links by externalId whatever brought the withdrawal."""
    fund(app_sandbox)
    payout, outbox = approved(maker, approver, parties)
    PayoutOutbox.objects.filter(pk=outbox.pk).update(state="submitting", attempts=1)
    Payout.objects.filter(pk=payout.pk).update(state="submitting")
    created = flashfx_client().create_withdrawal(
        {**outbox.request, "amount": Decimal(outbox.request["amount"])}
    )
    mirror_withdrawal(created.id)  # as a webhook or sync would
    payout.refresh_from_db()
    assert payout.state == State.SUBMITTED and payout.withdrawal.flashfx_id == created.id
    assert PayoutOutbox.objects.get(pk=outbox.pk).state == "submitted"


def test_a_second_withdrawal_under_a_payouts_code_is_logged_and_never_linked(
    app_sandbox, parties, maker, approver, caplog
):
    """FlashFX does not keep externalIds unique (docs/flashfx.md §5.14): one made outside
    the back-office under our code is an error to see, not a second link."""
    fund(app_sandbox)
    payout, outbox = approved(maker, approver, parties)
    payouts.payout_submit(outbox.pk)
    payout.refresh_from_db()
    first = payout.withdrawal
    other = flashfx_client().create_withdrawal(
        {**outbox.request, "amount": Decimal(outbox.request["amount"]), "idempotencyKey": "x1"}
    )
    mirror_withdrawal(other.id)
    payout.refresh_from_db()
    assert payout.withdrawal == first and payout.state == State.SUBMITTED
    assert f"payout {payout.code}: a second withdrawal {other.id}" in caplog.text


def test_a_payout_flashfx_already_has_is_never_sent_again_after_a_new_approval(
    app_sandbox, parties, maker, approver, caplog
):
    """A late withdrawal under the code of a payout sent back for approval is linked by the
    mirror; approving the payout again then sends nothing more."""
    log_calls(caplog)
    fund(app_sandbox)
    payout, outbox = approved(maker, approver, parties)
    created = flashfx_client().create_withdrawal(
        {**outbox.request, "amount": Decimal(outbox.request["amount"])}
    )
    # Meanwhile ours was sent back for approval (say, the recipient's details changed).
    PayoutOutbox.objects.filter(pk=outbox.pk).update(state="voided")
    Payout.objects.filter(pk=payout.pk).update(state="awaiting_approval")
    payouts._reask(payout, reason="Test.")
    mirror_withdrawal(created.id)  # the late news
    payout.refresh_from_db()
    assert payout.withdrawal.flashfx_id == created.id and payout.state == State.AWAITING_APPROVAL
    payouts.payout_approve(payout=payout, by=approver)
    again = PayoutOutbox.objects.get(payout=payout, state="approved")
    caplog.clear()
    assert payouts.payout_submit(again.pk) == "submitted"
    assert create_calls(caplog) == []
    assert len(withdrawals_at_flashfx(payout.code)) == 1
    assert Payout.objects.get(pk=payout.pk).state == State.SUBMITTED
