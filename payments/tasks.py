"""Celery tasks for money actions: thin, take ids, safe to run twice; the work is in services.

The only module of payments/ that enqueues (tests/test_imports.py). Views call the
`*_enqueue` helpers after a service recorded what is to be done; the helpers enqueue after the
transaction commits (delay_on_commit), so a worker never looks for a row that is not there yet.

Beat runs `payments_sweep` (declared in CELERY_BEAT_SCHEDULE as "payments-sweep"): it expires
approvals past their time (payouts' too), and picks up refunds a lost message or a dead worker
left behind; and `payouts_sweep` ("payouts-sweep"): approved payouts never claimed, and payouts
left submitting (no answer, or a worker that died at any point), each after PAYOUT_STUCK_AFTER.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from flashfx.errors import FlashFXUnavailable
from parties.services.calls import PartyError

from .exports import jobs
from .models import (
    Approval,
    DepositRefund,
    PaymentOrder,
    PaymentOrderOutbox,
    Payout,
    PayoutBatch,
    PayoutOutbox,
)
from .services import approvals, payment_orders, payout_batches, payouts, refunds

log = logging.getLogger(__name__)

State = DepositRefund.State
# How long an UNKNOWN outcome is left before the deposit is read back: a request FlashFX was
# still executing when our read timed out has finished by then.
RESOLVE_AFTER_SECONDS = 30
# A queued refund whose message was lost, or a SENDING one whose worker died mid-call.
STUCK_AFTER = timedelta(minutes=2)
# An approved payout whose message was lost, or a submitting one nobody answered or whose worker
# died: after this long the sweep sends it or recovers it (look-up by externalId first). Longer
# than a FlashFX call can take (connect + read timeout), so a call still running is not raced.
PAYOUT_STUCK_AFTER = timedelta(minutes=2)
# A payout with no answer is looked up at FlashFX after this long (payouts.settle_seconds()
# is the least: the call must have ended at FlashFX by then).
PAYOUT_RECOVER_AFTER_SECONDS = 45


def deposit_refund_enqueue(refund: DepositRefund) -> None:
    """Send this refund once the current transaction commits (only a QUEUED one goes out)."""
    if refund.state == State.QUEUED:
        deposit_refund_send.delay_on_commit(refund.pk)


def _refund_after_approval(approval: Approval) -> None:
    deposit_refund_send.delay_on_commit(DepositRefund.objects.get(approval=approval).pk)


# What to enqueue once an approval of each action is approved (the approvals view calls
# approval_enqueue); payouts add theirs here.
def _payout_after_approval(approval: Approval) -> None:
    payout_enqueue(Payout.objects.get(approval=approval))


def payout_enqueue(payout: Payout) -> None:
    """Send an APPROVED payout once the current transaction commits (its outbox row)."""
    outbox = payout.outbox.filter(state=PayoutOutbox.State.APPROVED).first()
    if outbox is not None:
        payout_submit.delay_on_commit(outbox.pk)


AFTER_APPROVAL: dict[str, Callable[[Approval], None]] = {
    refunds.ACTION: _refund_after_approval,
    payouts.ACTION: _payout_after_approval,
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


@shared_task(bind=True, acks_late=True, max_retries=8)
def payout_submit(self, outbox_id: int) -> str:
    """Claim the payout's outbox row and make its createWithdrawal call (a no-op unless it is
    still approved); with no answer, recovery looks it up later."""
    try:
        outcomes = payouts.payouts_send(outbox_id)
    except payouts.RateLimited as exc:  # FlashFX's 429: the rows not sent are approved again
        _recover_unknown(exc.outcomes)
        raise self.retry(exc=exc, countdown=_rate_limit_wait(exc, self.request.retries)) from exc
    _recover_unknown(outcomes)
    return outcomes[outbox_id]


def _recover_unknown(outcomes: dict[int, str]) -> None:
    for sent, outcome in outcomes.items():  # this row and any sent in the same group
        if outcome == "unknown":
            payout_recover.apply_async((sent,), countdown=PAYOUT_RECOVER_AFTER_SECONDS)


def _rate_limit_wait(exc: FlashFXUnavailable, retries: int) -> float:
    """FlashFX's Retry-After when it gave one (§1.4), else a backoff."""
    return exc.retry_after or min(5 * 2**retries, 300)


@shared_task(bind=True, acks_late=True, max_retries=8)
def payout_recover(self, outbox_id: int) -> str:
    """Settle a submitting payout: look it up by externalId, and only if FlashFX has none,
    the same request again with the same idempotencyKey."""
    outcome = _recover(self, payouts.payout_recover, PayoutOutbox, outbox_id)
    if outcome == PayoutOutbox.State.APPROVED:  # released after a 429: a send, not a look-up
        payout_submit.delay(outbox_id)
    _settle_batch_of(outbox_id)  # a recovered payout may be its batch's last
    return outcome


def _recover(task: Any, recover: Callable[[int], str], outbox: type, outbox_id: int) -> str:
    """A recovery task's run, for payouts and payment orders alike: `recover` (the service)
    on this outbox row; retried later while FlashFX cannot answer or the outcome is still
    open ("unknown", "wait"), with a growing countdown; past max_retries the sweep carries on."""
    if not outbox.objects.filter(pk=outbox_id).exists():
        return "missing"
    try:
        outcome = recover(outbox_id)
    except FlashFXUnavailable as exc:
        raise task.retry(
            exc=exc, countdown=exc.retry_after or min(30 * 2**task.request.retries, 600)
        ) from exc
    if outcome in ("unknown", "wait") and task.request.retries < task.max_retries:
        raise task.retry(countdown=min(PAYOUT_RECOVER_AFTER_SECONDS * 2**task.request.retries, 600))
    return outcome


def _sweep(due: Callable[..., tuple[list[int], list[int]]], submit: Any, recover: Any) -> dict:
    """A beat sweep of an outbox: rows approved but never claimed go to `submit`, rows left
    submitting to `recover`, each after PAYOUT_STUCK_AFTER (`due` says which)."""
    approved, submitting = due(stuck_after=PAYOUT_STUCK_AFTER)
    for outbox_id in approved:
        submit.delay(outbox_id)
    for outbox_id in submitting:
        recover.delay(outbox_id)
    return {"approved": len(approved), "submitting": len(submitting)}


@shared_task
def payouts_sweep() -> dict[str, int]:
    """Beat: send approved payouts never claimed; recover payouts left submitting."""
    return _sweep(payouts.payouts_due, payout_submit, payout_recover)


# --- Batch payouts (payments/services/payout_batches.py) -----------------------------------------


def payout_batch_enqueue(batch: PayoutBatch) -> None:
    """Send an APPROVED batch once the current transaction commits."""
    if batch.state in (PayoutBatch.State.APPROVED, PayoutBatch.State.SENDING):
        payout_batch_send.delay_on_commit(batch.pk)


def _batch_after_approval(approval: Approval) -> None:
    payout_batch_enqueue(PayoutBatch.objects.get(approval=approval))


AFTER_APPROVAL[payout_batches.ACTION] = _batch_after_approval


@shared_task(bind=True, acks_late=True, max_retries=8)
def payout_batch_send(self, batch_id: int) -> int:
    """Make the payouts of rows with bank details (their recipients at FlashFX, once), then
    start BATCH_SEND_TASKS drains (fewer for a small batch) that the workers share. Safe to run
    twice: a drain with nothing left approved ends at once. How many drains were started."""
    batch = PayoutBatch.objects.filter(pk=batch_id).first()
    if batch is None:
        return 0
    if payout_batches.batch_rows_to_prepare(batch):
        payout_batch_drains(batch)  # the rows naming a recipient go while the others are made
    try:
        payout_batches.batch_prepare(batch)
    except PartyError as exc:  # FlashFX unavailable: the rows not made yet, later
        log.warning("batch %s: recipients not made yet (%s)", batch.code, exc)
        if self.request.retries < self.max_retries:
            payout_batch_drains(batch)  # what is ready goes meanwhile
            raise self.retry(countdown=min(30 * 2**self.request.retries, 600)) from exc
    return payout_batch_drains(batch)


def payout_batch_drains(batch: PayoutBatch) -> int:
    waiting = PayoutOutbox.objects.filter(
        payout__batch=batch, state=PayoutOutbox.State.APPROVED
    ).count()
    drains = min(settings.BATCH_SEND_TASKS, -(-waiting // settings.PAYOUT_SEND_GROUP))
    for _ in range(drains):
        payout_batch_drain.delay(batch.pk)
    if not drains:
        payout_batches.batch_settle(batch)
    return drains


@shared_task(bind=True, acks_late=True, max_retries=8)
def payout_batch_drain(self, batch_id: int) -> int:
    """Feed the batch's approved payouts to the pipeline a group at a time until none is left
    approved (other drains share the work under SKIP LOCKED); no answer: recovery, as for one
    payout. Then settle the batch. How many rows this drain's groups took."""
    batch = PayoutBatch.objects.filter(pk=batch_id).first()
    if batch is None:
        return 0
    taken = 0
    while True:
        try:
            outcomes = payout_batches.batch_send_next(batch)
        except payouts.RateLimited as exc:  # FlashFX's 429: this drain waits, then goes on
            _recover_unknown(exc.outcomes)
            payout_batch_drain.apply_async(
                (batch_id,), countdown=_rate_limit_wait(exc, self.request.retries)
            )
            return taken
        if outcomes is None:
            break
        taken += len(outcomes)
        _recover_unknown(outcomes)
    payout_batches.batch_settle(batch)
    return taken


@shared_task
def payout_batches_sweep() -> dict[str, int]:
    """Beat: batches with payouts still to be made (a lost message, FlashFX unavailable) are
    sent again; finished ones are marked done. Approved payouts whose message was lost and
    payouts left submitting are the payouts sweep's, as for any payout."""
    due = payout_batches.batches_due(stuck_after=PAYOUT_STUCK_AFTER)
    for batch_id in due:
        payout_batch_send.delay(batch_id)
    return {"due": len(due), "done": len(payout_batches.batch_settle())}


def _settle_batch_of(outbox_id: int) -> None:
    """A recovered payout may be its batch's last: done now rather than at the next sweep."""
    batch_id = (
        PayoutOutbox.objects.filter(pk=outbox_id).values_list("payout__batch", flat=True).first()
    )
    if batch_id is not None:
        payout_batches.batch_settle(PayoutBatch(pk=batch_id))


# --- International payments (payments/services/payment_orders.py) ------------------------------
# As payouts: the last approval writes the outbox row; payment_order_submit claims it and makes
# the one createPayment call; with no answer, payment_order_recover reads the payment back by
# externalId before any resend; beat's payment_orders_sweep ("payment-orders-sweep") picks up
# rows a lost message or a dead worker left, after PAYOUT_STUCK_AFTER.


def payment_order_enqueue(order: PaymentOrder) -> None:
    """Send an APPROVED payment order once the current transaction commits (its outbox row)."""
    outbox = order.outbox.filter(state=PaymentOrderOutbox.State.APPROVED).first()
    if outbox is not None:
        payment_order_submit.delay_on_commit(outbox.pk)


def _payment_order_after_approval(approval: Approval) -> None:
    payment_order_enqueue(PaymentOrder.objects.get(approval=approval))


AFTER_APPROVAL[payment_orders.ACTION] = _payment_order_after_approval


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=8)
def payment_order_submit(self, outbox_id: int) -> str:
    """Claim the order's outbox row and make its createPayment call (a no-op unless it is still
    approved); with no answer, recovery looks it up later."""
    outcome = payment_orders.payment_order_submit(outbox_id)
    if outcome == "unknown":
        payment_order_recover.apply_async((outbox_id,), countdown=PAYOUT_RECOVER_AFTER_SECONDS)
    return outcome


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=8)
def payment_order_recover(self, outbox_id: int) -> str:
    """Settle a submitting payment order: look it up by externalId, and only if FlashFX has
    none, the same request again with the same idempotencyKey."""
    return _recover(self, payment_orders.payment_order_recover, PaymentOrderOutbox, outbox_id)


@shared_task
def payment_orders_sweep() -> dict[str, int]:
    """Beat: send approved payment orders never claimed; recover those left submitting."""
    return _sweep(payment_orders.payment_orders_due, payment_order_submit, payment_order_recover)


def export_job_enqueue(job_id: int) -> None:
    """Hand a large export to a worker (export_begin calls it after the job's commit)."""
    export_job_run.delay(job_id)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def export_job_run(job_id: int) -> str:
    """Write a large export's file (safe twice: only the run that claims the job writes)."""
    return jobs.export_job_run(job_id)


@shared_task
def exports_prune() -> int:
    """Beat: remove export files past EXPORT_RETENTION_HOURS."""
    return jobs.exports_prune()
