"""Rejecting (refunding) deposits: FlashFX's refundDeposit, exactly once (docs/flashfx.md §5.23).

The flow, each step a compare-and-set on the DepositRefund row and an audit event:

1. `deposit_refund_request` (a member, from the deposit page) checks the rules and records the
   intent before anything is sent: QUEUED, or AWAITING_APPROVAL with an Approval when the
   amount is above DEPOSIT_REFUND_APPROVAL_THRESHOLD (or in another currency than
   DEPOSIT_REFUND_APPROVAL_CURRENCY). The database keeps one active refund per deposit, so a
   double click or two members at once end with one refund and one clear refusal.
2. Approving the Approval moves it to QUEUED; declining or expiry closes it (payments/services/
   approvals.py runs `_approved` / `_closed`, registered below).
3. `deposit_refund_send` (only the Celery task calls it, after commit) claims QUEUED -> SENDING
   and makes the one call. The answer: SENT (FlashFX says REFUNDING), REFUSED (FlashFX's code
   and message), or UNKNOWN (no answer: OutcomeUnknown). A call that surely never left goes
   back to QUEUED for the task to retry.
4. `deposit_refund_resolve` settles UNKNOWN by reading the deposit back, never by a blind
   second call: REFUNDING/REFUNDED means it went out; still CONFIRMED with no refund means it
   did not, and only then is it queued again (at most MAX_ATTEMPTS calls in all).
5. `deposits_moved` (the deposits mirror's on_change, whatever brought the news: the reply, a
   webhook, sync) carries it on: REFUNDING -> SENT, REFUNDED -> COMPLETED and the deposit's
   review state -> rejected.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from backoffice import audit
from flashfx.errors import (
    FlashFXAuthError,
    FlashFXError,
    FlashFXRejected,
    FlashFXUnavailable,
    OutcomeUnknown,
)
from mirrors.client import flashfx_client
from mirrors.registry import registry

from ..models import Approval, Deposit, DepositRefund
from . import approvals
from .review import ReviewError, deposit_review_move

log = logging.getLogger(__name__)

State = DepositRefund.State
Reason = DepositRefund.Reason

ACTION = "deposit.refund"
APPROVE_PERMISSION = "payments.approve_refund"
REJECT_PERMISSION = "payments.reject_deposit"
MAX_ATTEMPTS = 2  # calls to refundDeposit in all: the first, and once more after reading back that it did not take
# Failures that prove the request never reached FlashFX: safe to send again.
NOT_SENT = frozenset(
    {"CONNECT_ERROR", "CONNECT_TIMEOUT", "POOL_TIMEOUT", "TOO_MANY_REQUESTS", "CLIENT_CLOSED"}
)
CENT = Decimal("0.01")
IN_FLIGHT = (State.AWAITING_APPROVAL, State.QUEUED, State.SENDING, State.UNKNOWN, State.SENT)


class RefundError(Exception):
    """A rejection that cannot be done; the message says why, for the member."""


def needs_approval(*, amount: Decimal, currency: str) -> bool:
    """Above the threshold in its currency, or in any other currency: four eyes."""
    if currency != settings.DEPOSIT_REFUND_APPROVAL_CURRENCY:
        return True
    return amount > settings.DEPOSIT_REFUND_APPROVAL_THRESHOLD


def active_refund(deposit: Deposit) -> DepositRefund | None:
    return deposit.refunds.filter(state__in=DepositRefund.ACTIVE).first()


def reject_blocker(deposit: Deposit) -> str | None:
    """Why this deposit cannot be rejected now (for the page), or None if it can."""
    if deposit.flashfx_status == "REVIEWING":
        return (
            "FlashFX is still reviewing this deposit; it can be rejected once FlashFX confirms it."
        )
    if deposit.flashfx_status != "CONFIRMED":
        return (
            f"FlashFX says this deposit is {deposit.flashfx_status or 'unknown'}; only a "
            "CONFIRMED deposit can be rejected."
        )
    refund = active_refund(deposit)
    if refund is not None:
        if refund.state == State.AWAITING_APPROVAL:
            return "A rejection of this deposit is already waiting for approval."
        if refund.state == State.COMPLETED:
            return "This deposit has already been refunded."
        return "This deposit is already being refunded."
    return None


def refund_reason_text(*, reason_code: str, reason_text: str) -> str:
    """The reason sent to FlashFX (at most 280 characters): the text for "other", else the
    reason's label, with the member's words after it when they gave any."""
    text = " ".join(reason_text.split())
    if reason_code == Reason.OTHER:
        return text[:280]
    label = str(Reason(reason_code).label)
    return (f"{label}: {text}" if text else label)[:280]


def refund_payload(refund: DepositRefund) -> dict[str, Any]:
    """Exactly what refundDeposit will be sent: what an approval is bound to."""
    return {
        "operation": "refundDeposit",
        "deposit": refund.deposit.flashfx_id,
        "amount": str(Decimal(refund.amount).quantize(CENT)),
        "currency": refund.currency,
        "reason": refund.reason,
        "refund": str(refund.code),
    }


def deposit_refund_request(
    *, deposit: Deposit, amount: Decimal, reason_code: str, reason_text: str = "", by: Any
) -> DepositRefund:
    """Record the intent to refund `deposit` (QUEUED, or AWAITING_APPROVAL with an Approval);
    nothing is sent here. RefundError says why not. The caller enqueues the send after commit
    when the refund is QUEUED (payments/tasks.py: deposit_refund_enqueue)."""
    if not by.has_perm(REJECT_PERMISSION):
        raise RefundError("You do not have permission to reject deposits.")
    if reason_code not in Reason.values:
        raise RefundError("Choose a reason for the rejection.")
    if reason_code == Reason.OTHER and not reason_text.strip():
        raise RefundError("Say why, in a few words, when the reason is \u201cOther\u201d.")
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise RefundError("The amount must be a number.")
    if amount <= 0:
        raise RefundError("The amount to refund must be more than zero.")
    if amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise RefundError("The amount can have at most two decimal places.")
    reason = refund_reason_text(reason_code=reason_code, reason_text=reason_text)
    try:
        with transaction.atomic():
            # The deposit's row lock serialises two members rejecting at once (on SQLite the
            # IMMEDIATE transaction does); the unique constraint backs it up.
            deposit = Deposit.objects.select_for_update().get(pk=deposit.pk)
            blocker = reject_blocker(deposit)
            if blocker:
                raise RefundError(blocker)
            if amount > deposit.amount:
                raise RefundError(
                    f"The amount to refund cannot be more than the deposit's "
                    f"{deposit.currency} {deposit.amount}."
                )
            approval_needed = needs_approval(amount=amount, currency=deposit.currency)
            refund = DepositRefund.objects.create(
                deposit=deposit,
                amount=amount,
                currency=deposit.currency,
                reason_code=reason_code,
                reason=reason,
                state=State.AWAITING_APPROVAL if approval_needed else State.QUEUED,
                requested_by=by,
            )
            if approval_needed:
                refund.approval = approvals.approval_request(
                    action=ACTION,
                    payload=refund_payload(refund),
                    summary=(
                        f"Refund {refund.currency} {refund.amount} of deposit "
                        f"{deposit.flashfx_id} to {deposit.sender_account_name or 'the payer'} "
                        f"(BSB {deposit.sender_bsb or '?'}, account "
                        f"{deposit.sender_account_no or '?'}): {reason}"
                    ),
                    permission=APPROVE_PERMISSION,
                    requested_by=by,
                )
                refund.save(update_fields=["approval"])
            audit.record(
                "deposit.refund.requested",
                actor=by,
                obj=refund,
                after={"state": refund.state},
                details={
                    "deposit": deposit.flashfx_id,
                    "amount": refund.amount,
                    "currency": refund.currency,
                    "reason_code": reason_code,
                    "reason": reason,
                    "approval": str(refund.approval.code) if refund.approval else None,
                },
            )
    except IntegrityError:
        # Another member's rejection committed between our check and our insert.
        raise RefundError("This deposit is already being refunded.") from None
    return refund


def _move(
    refund: DepositRefund,
    *,
    from_states: tuple[str, ...],
    to: str,
    actor: Any = None,
    details: dict[str, Any] | None = None,
    **fields: Any,
) -> bool:
    """Compare-and-set the refund's state, with its audit event; False if it was elsewhere."""
    now = timezone.now()
    with transaction.atomic():
        row = DepositRefund.objects.filter(pk=refund.pk, state__in=from_states)
        old = row.values_list("state", flat=True).first()
        if old is None or not row.filter(state=old).update(state=to, updated_at=now, **fields):
            return False
        refund.refresh_from_db()
        audit.record(
            f"deposit.refund.{to}",
            actor=actor,
            obj=refund,
            before={"state": old},
            after={"state": to},
            details={"deposit": refund.deposit.flashfx_id, **(details or {})},
        )
    return True


# --- Approval follow-ups (registered with the generic maker-checker) ---------------------------


def _approved(approval: Approval) -> None:
    refund = DepositRefund.objects.get(approval=approval)
    _move(
        refund,
        from_states=(State.AWAITING_APPROVAL,),
        to=State.QUEUED,
        actor=approval.decided_by,
        details={"approval": str(approval.code)},
    )


def _closed(approval: Approval) -> None:
    refund = DepositRefund.objects.get(approval=approval)
    to = State.EXPIRED if approval.state == Approval.State.EXPIRED else State.DECLINED
    _move(
        refund,
        from_states=(State.AWAITING_APPROVAL,),
        to=to,
        actor=approval.decided_by if to == State.DECLINED else None,
        details={"approval": str(approval.code), "note": approval.decision_note},
        error_message=(approval.decision_note or "")[:500],
    )


approvals.register_action(ACTION, on_approve=_approved, on_close=_closed)


# --- The call --------------------------------------------------------------------------------


def _approval_still_matches(refund: DepositRefund) -> bool:
    approval = refund.approval
    if approval is None:
        return True
    return (
        approval.state == Approval.State.APPROVED
        and approvals.payload_intact(approval)
        and approval.payload == approvals.canonical(refund_payload(refund))
    )


def _apply_reply(wire: Any, *, asked_at: datetime, source: str) -> None:
    """FlashFX's version of the deposit into our mirror (on_change carries the refund on).

    Dated when we asked, not when the answer came: the version is at least that fresh, and a
    webhook for a move FlashFX made while the answer travelled (REFUNDING -> REFUNDED at once)
    is then newer and applied, not dropped as stale (mirrors/apply.py; sync does the same)."""
    registry.get("deposits").apply(wire, observed_at=asked_at, source=source)


def deposit_refund_send(refund: DepositRefund) -> str:
    """QUEUED -> SENDING -> SENT / REFUSED / UNKNOWN (or back to QUEUED when the call surely
    never left). Makes at most one refundDeposit call, and none unless it claimed the row.
    Returns the refund's state afterwards; "retry" when the task should try again later."""
    refund = DepositRefund.objects.select_related("deposit", "approval").get(pk=refund.pk)
    if refund.state != State.QUEUED:
        return refund.state  # a second delivery of the task, or someone else got there first
    if not _approval_still_matches(refund):
        _move(
            refund,
            from_states=(State.QUEUED,),
            to=State.FAILED,
            error_code="APPROVAL_MISMATCH",
            error_message="What would be sent no longer matches what was approved.",
        )
        return State.FAILED
    claimed = DepositRefund.objects.filter(pk=refund.pk, state=State.QUEUED).update(
        state=State.SENDING,
        attempts=F("attempts") + 1,
        sent_at=timezone.now(),
        updated_at=timezone.now(),
    )
    if not claimed:
        return DepositRefund.objects.get(pk=refund.pk).state
    refund.refresh_from_db()
    audit.record(
        "deposit.refund.sending",
        obj=refund,
        before={"state": State.QUEUED},
        after={"state": State.SENDING},
        details={"deposit": refund.deposit.flashfx_id, "attempt": refund.attempts},
    )
    asked_at = timezone.now()
    try:
        reply = flashfx_client().refund_deposit(
            refund.deposit.flashfx_id, amount=refund.amount, reason=refund.reason
        )
    except FlashFXRejected as exc:
        _move(
            refund,
            from_states=(State.SENDING,),
            to=State.REFUSED,
            error_code=(exc.code or "REJECTED")[:64],
            error_message=str(exc.message)[:500],
            details={"code": exc.code, "message": exc.message},
        )
        return State.REFUSED
    except FlashFXUnavailable as exc:
        if exc.code in NOT_SENT:
            _move(
                refund,
                from_states=(State.SENDING,),
                to=State.QUEUED,
                error_code=exc.code[:64],
                error_message=str(exc.message)[:500],
                details={"code": exc.code, "message": exc.message, "sent": False},
            )
            return "retry"
        return _unknown(refund, exc)
    except FlashFXAuthError as exc:
        _move(
            refund,
            from_states=(State.SENDING,),
            to=State.FAILED,
            error_code=(exc.code or "AUTH")[:64],
            error_message=str(exc.message)[:500],
            details={"code": exc.code, "message": exc.message},
        )
        return State.FAILED
    except (OutcomeUnknown, FlashFXError) as exc:
        return _unknown(refund, exc)
    _move(
        refund,
        from_states=(State.SENDING, State.UNKNOWN),
        to=State.SENT,
        details={"status": reply.status},
        error_code="",
        error_message="",
    )
    _apply_reply(reply, asked_at=asked_at, source="reply")
    return DepositRefund.objects.get(pk=refund.pk).state


def _unknown(refund: DepositRefund, exc: FlashFXError) -> str:
    """No answer: it may have taken effect. Only reading the deposit back can tell."""
    log.warning("refundDeposit for refund %s: outcome unknown (%s)", refund.pk, exc)
    _move(
        refund,
        from_states=(State.SENDING,),
        to=State.UNKNOWN,
        error_code=(exc.code or "OUTCOME_UNKNOWN")[:64],
        error_message=str(exc.message)[:500],
        details={"code": exc.code, "message": exc.message},
    )
    return State.UNKNOWN


def deposit_refund_resolve(refund: DepositRefund) -> str:
    """UNKNOWN (or SENDING left by a dead worker) -> SENT / COMPLETED when FlashFX has the
    refund, -> QUEUED to send again when FlashFX still has the deposit CONFIRMED with no refund
    (the call never took), -> FAILED past MAX_ATTEMPTS. Reads; never calls refundDeposit."""
    refund = DepositRefund.objects.select_related("deposit").get(pk=refund.pk)
    if refund.state not in (State.UNKNOWN, State.SENDING):
        return refund.state
    asked_at = timezone.now()
    wire = flashfx_client().deposit(refund.deposit.flashfx_id)  # FlashFXUnavailable: later
    if wire is None:
        _move(
            refund,
            from_states=(State.UNKNOWN, State.SENDING),
            to=State.FAILED,
            error_code="NOT_FOUND",
            error_message="FlashFX does not know this deposit.",
        )
        return State.FAILED
    _apply_reply(
        wire, asked_at=asked_at, source="refund check"
    )  # REFUNDING/REFUNDED move the refund on
    refund.refresh_from_db()
    if refund.state not in (State.UNKNOWN, State.SENDING):
        return refund.state
    if wire.status in ("REFUNDING", "REFUNDED"):  # the mirror already had it: move ours here
        to = State.COMPLETED if wire.status == "REFUNDED" else State.SENT
        _move(
            refund, from_states=(State.UNKNOWN, State.SENDING), to=to, details={"read": wire.status}
        )
        return to
    if wire.status == "CONFIRMED" and not wire.refund_amount:
        if refund.attempts >= MAX_ATTEMPTS:
            _move(
                refund,
                from_states=(State.UNKNOWN, State.SENDING),
                to=State.FAILED,
                error_code="NO_ANSWER",
                error_message=f"FlashFX did not take the refund after {refund.attempts} calls.",
            )
            return State.FAILED
        _move(
            refund,
            from_states=(State.UNKNOWN, State.SENDING),
            to=State.QUEUED,
            details={"read": wire.status, "resend": True},
        )
        return State.QUEUED
    _move(
        refund,
        from_states=(State.UNKNOWN, State.SENDING),
        to=State.FAILED,
        error_code="INVALID_STATUS",
        error_message=f"FlashFX says this deposit is {wire.status}; the refund did not go out.",
    )
    return State.FAILED


# --- FlashFX's news ----------------------------------------------------------------------------


def deposits_moved(*, changes: list) -> None:
    """A deposit's FlashFX status moved (reply, webhook or sync; in that transaction): our
    refund follows. REFUNDING -> SENT; REFUNDED -> COMPLETED and review state rejected."""
    for change in changes:
        deposit = change.obj
        status = change.new_status
        if status not in ("REFUNDING", "REFUNDED"):
            continue
        refund = deposit.refunds.filter(
            state__in=(State.QUEUED, State.SENDING, State.UNKNOWN, State.SENT)
        ).first()
        if refund is None:
            continue
        if refund.state == State.QUEUED:
            # FlashFX moved it before our call went out: someone refunded it elsewhere
            # (FlashConnect). Ours must not go out too.
            _move(
                refund,
                from_states=(State.QUEUED,),
                to=State.FAILED,
                error_code="REFUNDED_ELSEWHERE",
                error_message=f"FlashFX moved the deposit to {status} before our call went out.",
            )
            continue
        if status == "REFUNDING":
            _move(
                refund,
                from_states=(State.SENDING, State.UNKNOWN),
                to=State.SENT,
                details={"status": status},
            )
            continue
        _move(
            refund,
            from_states=(State.SENDING, State.UNKNOWN, State.SENT),
            to=State.COMPLETED,
            completed_at=timezone.now(),
            details={"status": status},
        )
        fresh = Deposit.objects.get(pk=deposit.pk)
        if fresh.review_state != Deposit.Review.REJECTED:
            try:
                deposit_review_move(
                    deposit=fresh,
                    to=Deposit.Review.REJECTED,
                    actor=None,
                    details={"refund": str(refund.code)},
                )
            except ReviewError:
                log.exception("deposit %s refunded but its review could not move", deposit.pk)
                raise
