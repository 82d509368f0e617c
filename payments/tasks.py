"""Celery tasks for money actions: thin, take ids, safe to run twice; the work is in services.

The only module of payments/ that enqueues (tests/test_imports.py). Views call the
`*_enqueue` helpers after a service recorded what is to be done; the helpers enqueue after the
transaction commits (delay_on_commit), so a worker never looks for a row that is not there yet.

Beat runs `payments_sweep` (declared in CELERY_BEAT_SCHEDULE as "payments-sweep"): it expires
approvals past their time, and picks up refunds a lost message or a dead worker left behind.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from flashfx.errors import FlashFXUnavailable

from .models import Approval, DepositRefund
from .services import approvals, refunds

log = logging.getLogger(__name__)

State = DepositRefund.State
# How long an UNKNOWN outcome is left before the deposit is read back: a request FlashFX was
# still executing when our read timed out has finished by then.
RESOLVE_AFTER_SECONDS = 30
# A queued refund whose message was lost, or a SENDING one whose worker died mid-call.
STUCK_AFTER = timedelta(minutes=2)


def deposit_refund_enqueue(refund: DepositRefund) -> None:
    """Send this refund once the current transaction commits (only a QUEUED one goes out)."""
    if refund.state == State.QUEUED:
        deposit_refund_send.delay_on_commit(refund.pk)


def _refund_after_approval(approval: Approval) -> None:
    deposit_refund_send.delay_on_commit(DepositRefund.objects.get(approval=approval).pk)


# What to enqueue once an approval of each action is approved (the approvals view calls
# approval_enqueue); payouts add theirs here.
AFTER_APPROVAL: dict[str, Callable[[Approval], None]] = {
    refunds.ACTION: _refund_after_approval,
}


def approval_enqueue(approval: Approval) -> None:
    if approval.state == Approval.State.APPROVED and approval.action in AFTER_APPROVAL:
        AFTER_APPROVAL[approval.action](approval)


@shared_task(bind=True, acks_late=True, max_retries=8)
def deposit_refund_send(self, refund_id: int) -> str:
    """Make the refund's one refundDeposit call (a no-op unless it is QUEUED)."""
    refund = DepositRefund.objects.filter(pk=refund_id).first()
    if refund is None:
        return "missing"
    outcome = refunds.deposit_refund_send(refund)
    if outcome == "retry":  # the call surely never left (e.g. could not connect)
        if self.request.retries >= self.max_retries:
            return State.QUEUED  # the sweep picks it up later
        raise self.retry(countdown=min(5 * 2**self.request.retries, 300))
    if outcome == State.UNKNOWN:
        deposit_refund_resolve.apply_async((refund_id,), countdown=RESOLVE_AFTER_SECONDS)
    return outcome


@shared_task(bind=True, acks_late=True, max_retries=8)
def deposit_refund_resolve(self, refund_id: int) -> str:
    """Settle an UNKNOWN refund by reading the deposit back (never a blind second call)."""
    refund = DepositRefund.objects.filter(pk=refund_id).first()
    if refund is None:
        return "missing"
    try:
        outcome = refunds.deposit_refund_resolve(refund)
    except FlashFXUnavailable as exc:
        raise self.retry(
            exc=exc, countdown=exc.retry_after or min(30 * 2**self.request.retries, 600)
        ) from exc
    if outcome == State.QUEUED:
        deposit_refund_send.delay(refund_id)
    return outcome


@shared_task
def payments_sweep() -> dict[str, int]:
    """Beat: expire approvals past their time; send refunds left QUEUED; resolve refunds left
    UNKNOWN, or SENDING by a worker that died mid-call."""
    expired = approvals.expire_due()
    stuck = timezone.now() - STUCK_AFTER
    queued = list(
        DepositRefund.objects.filter(state=State.QUEUED, updated_at__lte=stuck).values_list(
            "pk", flat=True
        )
    )
    for refund_id in queued:
        deposit_refund_send.delay(refund_id)
    unknown = list(
        DepositRefund.objects.filter(
            state__in=(State.UNKNOWN, State.SENDING), updated_at__lte=stuck
        ).values_list("pk", flat=True)
    )
    for refund_id in unknown:
        deposit_refund_resolve.delay(refund_id)
    return {"expired": expired, "queued": len(queued), "unknown": len(unknown)}
