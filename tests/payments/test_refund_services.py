"""Rejecting (refunding) a deposit, through the services and the sandbox: every refusal the
issue lists, the four eyes above the threshold, FlashFX's refusal and its silence, and exactly
one refundDeposit call however often the send runs."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from harness import close_app_client
from refund_support import (
    app_at,
    confirmed_deposit,
    local_deposit,
    log_calls,
    mirror,
    refund_calls,
)
from staff import make_staff

from backoffice.models import AuditEvent
from payments import tasks
from payments.models import Approval, Deposit, DepositRefund
from payments.services import approvals, refunds
from payments.services.approvals import ApprovalError
from payments.services.refunds import RefundError

pytestmark = pytest.mark.django_db
State = DepositRefund.State
Reason = DepositRefund.Reason


@pytest.fixture
def app_sandbox(sandbox, settings):
    with app_at(sandbox, settings):
        yield sandbox


@pytest.fixture
def operator():
    return make_staff("operator")


@pytest.fixture
def approver():
    return make_staff("approver")


def request(deposit, by, amount=None, reason=Reason.NOT_EXPECTED, text=""):
    return refunds.deposit_refund_request(
        deposit=deposit,
        amount=Decimal(amount) if amount is not None else deposit.amount,
        reason_code=reason,
        reason_text=text,
        by=by,
    )


# --- Refused before anything is recorded ----------------------------------------------------


def test_a_deposit_flashfx_is_still_reviewing_cannot_be_rejected(operator):
    deposit = local_deposit("REVIEWING")
    with pytest.raises(RefundError, match="FlashFX is still reviewing this deposit"):
        request(deposit, operator)
    assert not DepositRefund.objects.exists()


@pytest.mark.parametrize("status", ["INITIALISED", "REFUNDING", "REFUNDED", "CANCELLED"])
def test_only_a_confirmed_deposit_can_be_rejected(operator, status):
    with pytest.raises(RefundError, match=f"FlashFX says this deposit is {status}"):
        request(local_deposit(status), operator)
    assert not DepositRefund.objects.exists()


def test_a_deposit_already_being_refunded_is_not_refunded_again(operator):
    deposit = local_deposit()
    first = request(deposit, operator)
    with pytest.raises(RefundError, match="already being refunded"):
        request(deposit, make_staff("operator", "operator2"))
    assert list(DepositRefund.objects.all()) == [first]


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("250.01", "cannot be more than the deposit's AUD 250.00"),
        ("0", "must be more than zero"),
        ("-5", "must be more than zero"),
        ("1.005", "at most two decimal places"),
    ],
)
def test_the_amount_is_positive_and_at_most_the_deposit(operator, amount, message):
    with pytest.raises(RefundError, match=message):
        request(local_deposit(amount="250.00"), operator, amount=amount)
    assert not DepositRefund.objects.exists()


def test_a_partial_refund_is_allowed(operator):
    refund = request(local_deposit(amount="250.00"), operator, amount="100.50")
    assert (refund.amount, refund.state) == (Decimal("100.50"), State.QUEUED)


def test_a_reason_is_needed_and_other_needs_words(operator):
    deposit = local_deposit()
    with pytest.raises(RefundError, match="Choose a reason"):
        request(deposit, operator, reason="")
    with pytest.raises(RefundError, match="when the reason is .Other."):
        request(deposit, operator, reason=Reason.OTHER, text="  ")
    refund = request(deposit, operator, reason=Reason.OTHER, text="Payer asked  for it back")
    assert refund.reason == "Payer asked for it back"


def test_a_fixed_reason_is_sent_as_its_label_with_the_members_words(operator):
    refund = request(local_deposit(), operator, reason=Reason.DUPLICATE, text="paid twice")
    assert refund.reason == "Duplicate payment: paid twice"


@pytest.mark.parametrize("role", ["viewer", "approver", "compliance", "admin", None])
def test_only_members_who_may_reject_deposits_can(role):
    with pytest.raises(RefundError, match="permission to reject deposits"):
        request(local_deposit(), make_staff(role))
    assert not DepositRefund.objects.exists()


# --- The intent, then one call ----------------------------------------------------------------


def test_the_intent_is_recorded_before_any_call_then_the_send_makes_one(
    app_sandbox, operator, caplog
):
    log_calls(caplog)
    deposit = confirmed_deposit(app_sandbox, "250.00")
    refund = request(deposit, operator, amount="200.00", reason=Reason.WRONG_AMOUNT)
    assert refund.state == State.QUEUED
    assert refund_calls(caplog) == []
    assert AuditEvent.objects.filter(action="deposit.refund.requested").count() == 1

    assert refunds.deposit_refund_send(refund) == State.SENT
    assert len(refund_calls(caplog)) == 1
    refund.refresh_from_db()
    assert (refund.state, refund.attempts, refund.error_code) == (State.SENT, 1, "")
    deposit.refresh_from_db()
    assert deposit.flashfx_status == "REFUNDING"  # the reply went into the mirror
    assert app_sandbox.deposit_status(deposit.flashfx_id) == "REFUNDING"

    # FlashFX completes it; whatever brings the news (here a sync) completes ours.
    app_sandbox.advance("deposits", deposit.flashfx_id, "REFUNDED")
    deposit = mirror(deposit.flashfx_id)
    refund.refresh_from_db()
    assert refund.state == State.COMPLETED and refund.completed_at is not None
    assert deposit.review_state == Deposit.Review.REJECTED
    assert deposit.refund_amount == Decimal("200.00")
    assert AuditEvent.objects.filter(action="deposit.review.rejected", actor="").count() == 1


def test_a_double_submit_and_a_task_run_twice_make_exactly_one_call(app_sandbox, operator, caplog):
    log_calls(caplog)
    deposit = confirmed_deposit(app_sandbox)
    refund = request(deposit, operator)
    with pytest.raises(RefundError):
        request(deposit, operator)  # the second click
    with pytest.raises(RefundError):
        request(deposit, make_staff("operator", "someone-else"))  # a colleague at once
    tasks.deposit_refund_send.apply(args=(refund.pk,))
    tasks.deposit_refund_send.apply(args=(refund.pk,))  # redelivered
    refunds.deposit_refund_send(refund)
    assert len(refund_calls(caplog)) == 1
    assert DepositRefund.objects.get().state == State.SENT
    deliveries = [d["event"] for d in app_sandbox.deliveries(entityId=deposit.flashfx_id)]
    assert deliveries.count("deposit_refunding") == 1


def test_flashfx_refusing_records_its_code_and_message(app_sandbox, operator, caplog):
    log_calls(caplog)
    deposit = confirmed_deposit(app_sandbox)
    # Someone refunded it at FlashFX (FlashConnect) before our mirror heard of it.
    app_sandbox.advance("deposits", deposit.flashfx_id, "REFUNDING", refundAmount=1)
    refund = request(deposit, operator)
    assert refunds.deposit_refund_send(refund) == State.REFUSED
    refund.refresh_from_db()
    assert refund.state == State.REFUSED
    assert refund.error_code == "INVALID_STATUS"
    assert "Only a CONFIRMED deposit can be refunded" in refund.error_message
    assert len(refund_calls(caplog)) == 1
    # A refused refund is no longer active: nothing is left claiming the deposit.
    assert refunds.active_refund(deposit) is None
    event = AuditEvent.objects.get(action="deposit.refund.refused")
    assert event.details["code"] == "INVALID_STATUS"


def test_no_answer_is_settled_by_reading_the_deposit_back_not_by_a_second_call(
    app_sandbox, operator, caplog
):
    log_calls(caplog)
    deposit = confirmed_deposit(app_sandbox)
    refund = request(deposit, operator)
    # FlashFX executes the refund, but the connection drops before its answer arrives.
    app_sandbox.faults(commit_then_drop=1, operations=["refundDeposit"], limit=1)
    assert refunds.deposit_refund_send(refund) == State.UNKNOWN
    refund.refresh_from_db()
    assert refund.state == State.UNKNOWN and refund.error_code
    # Sending again is a no-op: only the read-back moves an unknown refund.
    assert refunds.deposit_refund_send(refund) == State.UNKNOWN
    assert refunds.deposit_refund_resolve(refund) == State.SENT
    assert len(refund_calls(caplog)) == 1
    assert app_sandbox.deposit_status(deposit.flashfx_id) == "REFUNDING"


def test_a_read_timeout_is_an_unknown_outcome_settled_by_reading_back(
    app_sandbox, operator, settings, caplog
):
    log_calls(caplog)
    deposit = confirmed_deposit(app_sandbox)
    refund = request(deposit, operator)
    close_app_client()
    settings.FLASHFX_READ_TIMEOUT = 0.5
    app_sandbox.faults(slow=1, slow_seconds=1.0, operations=["refundDeposit"], limit=1)
    assert refunds.deposit_refund_send(refund) == State.UNKNOWN
    assert DepositRefund.objects.get().error_code == "READ_TIMEOUT"
    app_sandbox.wait_for_status("deposit", deposit.flashfx_id, "REFUNDING")  # it did go through
    assert refunds.deposit_refund_resolve(refund) == State.SENT
    assert len(refund_calls(caplog)) == 1


def test_a_call_that_never_took_is_sent_again_once_after_reading_back(
    app_sandbox, operator, caplog
):
    log_calls(caplog)
    deposit = confirmed_deposit(app_sandbox)
    refund = request(deposit, operator)
    app_sandbox.faults(http_500=1, operations=["refundDeposit"], limit=1)
    assert refunds.deposit_refund_send(refund) == State.UNKNOWN  # a 500 proves nothing
    assert refunds.deposit_refund_resolve(refund) == State.QUEUED  # still CONFIRMED, no refund
    assert refunds.deposit_refund_send(refund) == State.SENT
    refund.refresh_from_db()
    assert refund.attempts == 2
    assert len(refund_calls(caplog)) == 2
    deliveries = [d["event"] for d in app_sandbox.deliveries(entityId=deposit.flashfx_id)]
    assert deliveries.count("deposit_refunding") == 1


def test_the_resolve_task_sends_again_when_the_call_never_took(app_sandbox, operator, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    deposit = confirmed_deposit(app_sandbox)
    refund = request(deposit, operator)
    app_sandbox.faults(http_500=1, operations=["refundDeposit"], limit=1)
    # Eager: the send finds no answer, the resolve (its countdown ignored) reads back and
    # queues it, and the second send goes out.
    tasks.deposit_refund_send.apply(args=(refund.pk,))
    refund.refresh_from_db()
    assert refund.state == State.SENT


# --- Four eyes ----------------------------------------------------------------------------------


def test_above_the_threshold_a_rejection_waits_for_someone_else(
    app_sandbox, operator, approver, settings, caplog
):
    log_calls(caplog)
    settings.DEPOSIT_REFUND_APPROVAL_THRESHOLD = Decimal("100.00")
    deposit = confirmed_deposit(app_sandbox, "150.00")
    refund = request(deposit, operator)
    assert refund.state == State.AWAITING_APPROVAL
    approval = refund.approval
    assert approval.permission == "payments.approve_refund"
    assert approval.payload == {
        "operation": "refundDeposit",
        "deposit": deposit.flashfx_id,
        "amount": "150.00",
        "currency": "AUD",
        "reason": "Payment not expected",
        "refund": str(refund.code),
    }
    assert refunds.deposit_refund_send(refund) == State.AWAITING_APPROVAL  # not before approval
    assert refund_calls(caplog) == []

    # The operator cannot approve their own, even holding the permission.
    with pytest.raises(ApprovalError, match="someone else must approve"):
        approvals.approval_approve(approval=approval, by=operator)
    with pytest.raises(ApprovalError, match="permission"):
        approvals.approval_approve(approval=approval, by=make_staff("viewer"))

    approvals.approval_approve(approval=approval, by=approver)
    refund.refresh_from_db()
    assert refund.state == State.QUEUED
    assert refunds.deposit_refund_send(refund) == State.SENT
    assert len(refund_calls(caplog)) == 1


def test_a_threshold_amount_itself_needs_no_approval_and_other_currencies_always_do(
    operator, settings
):
    settings.DEPOSIT_REFUND_APPROVAL_THRESHOLD = Decimal("100.00")
    assert request(local_deposit(amount="100.00"), operator).state == State.QUEUED
    usd = local_deposit(amount="1.00", currency="USD")
    assert request(usd, operator).state == State.AWAITING_APPROVAL


def test_a_declined_rejection_never_goes_out(app_sandbox, operator, approver, settings, caplog):
    log_calls(caplog)
    settings.DEPOSIT_REFUND_APPROVAL_THRESHOLD = Decimal("10.00")
    deposit = confirmed_deposit(app_sandbox, "50.00")
    refund = request(deposit, operator)
    approvals.approval_decline(approval=refund.approval, by=approver, note="We expected this")
    refund.refresh_from_db()
    assert refund.state == State.DECLINED
    assert refund.error_message == "We expected this"
    assert refunds.deposit_refund_send(refund) == State.DECLINED
    assert refund_calls(caplog) == []
    # Declined is not active: the deposit can be rejected again.
    assert refunds.reject_blocker(deposit) is None


def test_an_expired_approval_cannot_be_approved_and_its_refund_expires(
    operator, approver, settings
):
    settings.DEPOSIT_REFUND_APPROVAL_THRESHOLD = Decimal("10.00")
    refund = request(local_deposit(amount="50.00"), operator)
    Approval.objects.filter(pk=refund.approval_id).update(
        expires_at=refund.approval.requested_at - timedelta(seconds=1)
    )
    with pytest.raises(ApprovalError, match="expired"):
        approvals.approval_approve(approval=refund.approval, by=approver)
    refund.refresh_from_db()
    assert refund.state == State.EXPIRED
    assert refund.approval.state == Approval.State.EXPIRED
    assert AuditEvent.objects.filter(action="approval.expired").count() == 1


def test_an_approval_whose_payload_was_changed_is_refused(operator, approver, settings):
    settings.DEPOSIT_REFUND_APPROVAL_THRESHOLD = Decimal("10.00")
    refund = request(local_deposit(amount="50.00"), operator)
    payload = refund.approval.payload | {"amount": "5000.00"}
    Approval.objects.filter(pk=refund.approval_id).update(payload=payload)
    with pytest.raises(ApprovalError, match="no longer matches"):
        approvals.approval_approve(approval=refund.approval, by=approver)
    refund.refresh_from_db()
    assert refund.state == State.AWAITING_APPROVAL


def test_a_refund_whose_approved_payload_differs_from_it_is_not_sent(
    operator, approver, settings, caplog
):
    log_calls(caplog)
    settings.DEPOSIT_REFUND_APPROVAL_THRESHOLD = Decimal("10.00")
    refund = request(local_deposit(amount="50.00"), operator)
    approvals.approval_approve(approval=refund.approval, by=approver)
    DepositRefund.objects.filter(pk=refund.pk).update(amount=Decimal("49.00"))
    assert refunds.deposit_refund_send(refund) == State.FAILED
    refund.refresh_from_db()
    assert refund.error_code == "APPROVAL_MISMATCH"
    assert refund_calls(caplog) == []


# --- FlashFX's news -------------------------------------------------------------------------


def test_a_refund_done_elsewhere_first_stops_ours_from_going_out(app_sandbox, operator, caplog):
    log_calls(caplog)
    deposit = confirmed_deposit(app_sandbox)
    refund = request(deposit, operator)
    app_sandbox.advance("deposits", deposit.flashfx_id, "REFUNDING", refundAmount=1)
    mirror(deposit.flashfx_id)  # a webhook or sync brings it before our task runs
    refund.refresh_from_db()
    assert (refund.state, refund.error_code) == (State.FAILED, "REFUNDED_ELSEWHERE")
    assert refunds.deposit_refund_send(refund) == State.FAILED
    assert refund_calls(caplog) == []


def test_the_sweep_sends_stuck_refunds_and_expires_approvals(
    app_sandbox, operator, settings, caplog
):
    log_calls(caplog)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.DEPOSIT_REFUND_APPROVAL_THRESHOLD = Decimal("100.00")
    stuck = request(confirmed_deposit(app_sandbox, "20.00"), operator)
    waiting = request(local_deposit(amount="500.00"), operator)
    long_ago = stuck.requested_at - timedelta(hours=48)
    DepositRefund.objects.filter(pk=stuck.pk).update(updated_at=long_ago)
    Approval.objects.filter(pk=waiting.approval_id).update(expires_at=long_ago)

    assert tasks.payments_sweep.apply().get() == {"expired": 1, "queued": 1, "unknown": 0}
    stuck.refresh_from_db()
    waiting.refresh_from_db()
    assert stuck.state == State.SENT
    assert waiting.state == State.EXPIRED
    assert len(refund_calls(caplog)) == 1


def test_the_queue_can_show_each_deposits_latest_refund_and_its_problem(operator):
    from payments.selectors.refunds import PROBLEMS, refunds_latest

    refused, quiet, untouched = local_deposit(), local_deposit(), local_deposit()
    first = request(refused, operator)
    DepositRefund.objects.filter(pk=first.pk).update(
        state=State.REFUSED, error_code="INSUFFICIENT_FUNDS", error_message="Not enough cleared"
    )
    request(quiet, operator)
    latest = refunds_latest(deposit_ids=[refused.pk, quiet.pk, untouched.pk])
    assert set(latest) == {refused.pk, quiet.pk}
    assert latest[refused.pk].state in PROBLEMS
    assert latest[refused.pk].error_code == "INSUFFICIENT_FUNDS"
    assert latest[quiet.pk].state == State.QUEUED


def test_after_a_second_call_that_never_took_it_fails_rather_than_calling_again(
    app_sandbox, operator, caplog
):
    log_calls(caplog)
    deposit = confirmed_deposit(app_sandbox)
    refund = request(deposit, operator)
    app_sandbox.faults(http_500=1, operations=["refundDeposit"], limit=2)
    assert refunds.deposit_refund_send(refund) == State.UNKNOWN
    assert refunds.deposit_refund_resolve(refund) == State.QUEUED
    assert refunds.deposit_refund_send(refund) == State.UNKNOWN
    assert refunds.deposit_refund_resolve(refund) == State.FAILED
    refund.refresh_from_db()
    assert refund.error_code == "NO_ANSWER"
    assert "did not take the refund after 2 calls" in refund.error_message
    assert len(refund_calls(caplog)) == 2
    assert app_sandbox.deposit_status(deposit.flashfx_id) == "CONFIRMED"
    assert refunds.reject_blocker(deposit) is None  # a member may try again
