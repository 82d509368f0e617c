"""International payments: proposed with a live quote, approved by others, sent to FlashFX
exactly once (createPayment, docs/flashfx.md §3.6.1), followed to CLOSED / FAILED / CANCELLED.

The workflow is a payout's (payments/services/payouts.py), for a PaymentOrder:

1. `quote_for` asks FlashFX for an indicative quote (§3.7, §5.26): the rate a payment converts
   at (the bid), no fee (§5.15), the amount on the other side, and how long it holds.
   `payment_order_create` (a member with create_payment) validates everything before saving,
   keeps the maker's quote beside the order and asks for approval (AWAITING_APPROVAL), bound to
   the hash of `payment_order_payload`: the amounts and currencies, the recipient's bank
   details, the sender, reference, reason and source of funds; NOT the rate. No quoteId is
   sent: a tradable quote lives 120 s (§5.26), an approval takes longer; the rate is the one
   FlashFX applies at creation, seen on the mirrored Payment when it settles.
2. Tiers (payments/services/payout_policy.py) on the AUD side: the quoted from-amount when the
   payment is from AUD; from another currency, the highest tier (we hold no AUD value for it
   that the approver could check).
3. `payment_order_approve` signs; the last signature writes the outbox row (the PaymentInput
   and the hash) and APPROVED in the same transaction; the caller enqueues the send after
   commit (payments/tasks.py: payment_order_enqueue).
4. `payment_order_submit` claims the outbox row with a conditional UPDATE under SKIP LOCKED
   (approved -> submitting, attempts + 1, committed before any call) after recomputing the
   hash, then one createPayment with the order's code as externalId and idempotencyKey
   (§2.2, §5.13). Refused -> SUBMIT_FAILED with FlashFX's code; no answer (OutcomeUnknown, a
   5xx, a crash) -> left SUBMITTING for `payment_order_recover`, which reads the payment back
   by externalId before any resend and resends only the same request with the same key.
5. `payments_changed` (the payments mirror's on_change, whatever brought the news: reply,
   webhook, sync) links the Payment whose externalId is an order's code and moves a
   SUBMITTING order on; the payment's own statuses (OPEN -> CLOSED / FAILED / CANCELLED) are
   FlashFX's, on the mirror (§3.6.3).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from backoffice import audit
from flashfx.errors import FlashFXError, FlashFXRejected
from mirrors.client import flashfx_client
from mirrors.registry import registry
from parties.models import Recipient, Sender, SubClient

from ..models import Approval, Payment, PaymentOrder, PaymentOrderEvent, PaymentOrderOutbox
from . import approvals
from .payout_policy import payout_policy
from .payouts import PLACEHOLDERS, PRINTABLE_ASCII, recipient_name, settle_seconds
from .sending import Workflow

log = logging.getLogger(__name__)

State = PaymentOrder.State
Box = PaymentOrderOutbox.State

ACTION = "payment.send"
CREATE_PERMISSION = "payments.create_payment"
APPROVE_PERMISSION = "payments.approve_payment"
CENT = Decimal("0.01")
RATE_PLACES = Decimal("0.00000001")
QUOTE_TTL = timedelta(seconds=120)  # a quote's life when FlashFX gives no expireAt (§5.26)
REFERENCE_MAX = 280  # externalReference (docs/flashfx.md §2.2)
# FlashFX's FromCurrency (flashfx/schema.graphql): the balances a payment can be paid from.
FROM_CURRENCIES = ("AUD", "CAD", "CHF", "EUR", "GBP", "NZD", "SGD", "USD")
# Local AUD accounts take payouts (payments/services/payouts.py), not payments.
LOCAL_ACCOUNT_TYPES = ("BSB", "PAYID")
FEE = Decimal("0.00")  # payments carry no fee: the cost is in the rate (§5.15)
# FlashFX's field (its "input.x" path) -> ours, for refusals of a quote or a payment.
FIELDS = {
    "fromCurrency": "from_currency",
    "toCurrency": "to_currency",
    "size": "size",
    "currency": "size_currency",
    "externalReference": "reference",
    "reason": "reason",
    "sourceOfFunds": "source_of_funds",
    "recipientId": "recipient",
    "senderId": "sender",
    "subClientId": "sub_client",
}


class PaymentOrderError(Exception):
    """A payment order step that cannot be done; the message says why, for the member.
    `field` names the form field at fault (None: the whole form)."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field or None
        self.message = message


def _our_field(flashfx_field: str | None) -> str | None:
    return FIELDS.get((flashfx_field or "").rpartition(".")[2])


# --- Quotes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuoteView:
    """What a member sees of a quote: FlashFX's rate (units of to_currency per from_currency),
    the fee, both amounts, and from when until when it holds."""

    from_currency: str
    to_currency: str
    size: Decimal
    size_currency: str
    rate: Decimal
    fee: Decimal
    from_amount: Decimal
    to_amount: Decimal
    quoted_at: datetime
    expires_at: datetime

    @property
    def symbol(self) -> str:
        return f"{self.from_currency}{self.to_currency}"

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at <= (now or timezone.now())


@dataclass(frozen=True)
class QuoteDifference:
    """A fresh quote against the maker's: fresh minus maker's (positive: more now)."""

    rate: Decimal
    rate_percent: Decimal
    from_amount: Decimal
    to_amount: Decimal
    from_currency: str
    to_currency: str


def _amounts(*, size: Decimal, size_currency: str, from_currency: str, rate: Decimal):
    """Both sides at `rate`, rounded to the cent as FlashFX rounds them (§5.26)."""
    if size_currency == from_currency:
        return size, (size * rate).quantize(CENT, ROUND_HALF_UP)
    return (size / rate).quantize(CENT, ROUND_HALF_UP), size


def _check_amount(*, from_currency: str, to_currency: str, size: Any, size_currency: str) -> None:
    if from_currency not in FROM_CURRENCIES:
        raise PaymentOrderError(
            "from_currency", f"Payments are paid from one of {', '.join(FROM_CURRENCIES)}."
        )
    if not (isinstance(to_currency, str) and len(to_currency) == 3 and to_currency.isupper()):
        raise PaymentOrderError("to_currency", "Choose the currency the recipient receives.")
    if from_currency == to_currency:
        raise PaymentOrderError(
            "to_currency",
            f"A payment converts {from_currency} into another currency; use a payout for "
            f"{from_currency} to {to_currency}.",
        )
    if size_currency not in (from_currency, to_currency):
        raise PaymentOrderError(
            "size_currency", f"The amount is in {from_currency} or in {to_currency}."
        )
    if not isinstance(size, Decimal) or not size.is_finite():
        raise PaymentOrderError("size", "The amount must be a number.")
    if size <= 0:
        raise PaymentOrderError("size", "The amount must be more than zero.")
    if size.as_tuple().exponent < -2:  # type: ignore[operator]
        raise PaymentOrderError("size", "The amount can have at most two decimal places.")
    if size >= Decimal("1e12"):
        raise PaymentOrderError("size", "That amount is too large.")


def quote_for(*, from_currency: str, to_currency: str, size: Any, size_currency: str) -> QuoteView:
    """An indicative quote from FlashFX for this payment (§3.7, §5.26): it binds nobody, and
    createPayment converts at the bid current when it is made."""
    _check_amount(
        from_currency=from_currency, to_currency=to_currency, size=size, size_currency=size_currency
    )
    try:
        quote = flashfx_client().quote(
            {
                "fromCurrency": from_currency,
                "toCurrency": to_currency,
                "size": size,
                "currency": size_currency,
            }
        )
    except FlashFXRejected as exc:
        raise PaymentOrderError(
            _our_field(exc.field), f"FlashFX gives no quote for this: {exc.message}"
        ) from exc
    except FlashFXError as exc:
        raise PaymentOrderError(
            None, "FlashFX did not answer with a quote; try again in a moment."
        ) from exc
    rate = Decimal(quote.bid).quantize(RATE_PLACES)
    if rate <= 0:
        raise PaymentOrderError(None, "FlashFX gave no usable rate; try again in a moment.")
    from_amount, to_amount = _amounts(
        size=size, size_currency=size_currency, from_currency=from_currency, rate=rate
    )
    quoted_at = quote.timestamp or timezone.now()
    return QuoteView(
        from_currency=from_currency,
        to_currency=to_currency,
        size=size,
        size_currency=size_currency,
        rate=rate,
        fee=FEE,
        from_amount=from_amount,
        to_amount=to_amount,
        quoted_at=quoted_at,
        expires_at=quote.expire_at or quoted_at + QUOTE_TTL,
    )


def maker_quote(order: PaymentOrder) -> QuoteView:
    """The quote the maker saw, as kept on the order."""
    return QuoteView(
        from_currency=order.from_currency,
        to_currency=order.to_currency,
        size=Decimal(order.size),
        size_currency=order.size_currency,
        rate=Decimal(order.quoted_rate),
        fee=Decimal(order.quoted_fee),
        from_amount=Decimal(order.quoted_from_amount),
        to_amount=Decimal(order.quoted_to_amount),
        quoted_at=order.quoted_at,
        expires_at=order.quote_expires_at,
    )


def order_quote(order: PaymentOrder) -> QuoteView:
    """A fresh quote for this order's amounts (what the approver compares)."""
    return quote_for(
        from_currency=order.from_currency,
        to_currency=order.to_currency,
        size=Decimal(order.size),
        size_currency=order.size_currency,
    )


def quote_difference(order: PaymentOrder, fresh: QuoteView) -> QuoteDifference:
    """What changed since the maker's quote: the rate (and in percent) and both amounts."""
    quoted_rate = Decimal(order.quoted_rate)
    rate = fresh.rate - quoted_rate
    return QuoteDifference(
        rate=rate,
        rate_percent=(rate / quoted_rate * 100).quantize(CENT, ROUND_HALF_UP),
        from_amount=fresh.from_amount - Decimal(order.quoted_from_amount),
        to_amount=fresh.to_amount - Decimal(order.quoted_to_amount),
        from_currency=order.from_currency,
        to_currency=order.to_currency,
    )


# --- What is sent, and what the approval is bound to ------------------------------------------


def payment_order_payload(order: PaymentOrder) -> dict[str, Any]:
    """What createPayment will be sent, with the recipient's bank details as they are now:
    what an approval's hash binds. Not the rate (see the module's docstring)."""
    r = order.recipient
    return {
        "operation": "createPayment",
        "order": order.code,
        "size": str(Decimal(order.size).quantize(CENT)),
        "size_currency": order.size_currency,
        "from_currency": order.from_currency,
        "to_currency": order.to_currency,
        "recipient": {
            "id": r.flashfx_id,
            "name": recipient_name(r),
            "account_id_type": r.account_id_type,
            "country": r.country,
            "currency": r.currency,
            **r.bank_details,
        },
        "reference": order.reference,
        "reason": order.reason,
        "source_of_funds": order.source_of_funds,
        "sender": {"id": order.sender.flashfx_id, "name": order.sender.name}
        if order.sender
        else None,
        "sub_client": {"id": order.sub_client.flashfx_id, "name": order.sub_client.full_name}
        if order.sub_client
        else None,
    }


def payment_input(order: PaymentOrder) -> dict[str, Any]:
    """PaymentInput (§3.6.1) as stored in the outbox (size as a string; Decimal when sent).
    The same request every time: a repeat with the same idempotencyKey must be the same input
    (§5.13). No quoteId (§5.26)."""
    request: dict[str, Any] = {
        "fromCurrency": order.from_currency,
        "toCurrency": order.to_currency,
        "size": str(Decimal(order.size).quantize(CENT)),
        "currency": order.size_currency,
        "reason": order.reason,
        "sourceOfFunds": order.source_of_funds,
        "externalReference": order.reference,
        "externalId": order.code,
        "idempotencyKey": order.code,
        "recipientId": order.recipient.flashfx_id,
    }
    if order.sender:
        request["senderId"] = order.sender.flashfx_id
    if order.sub_client:
        request["subClientId"] = order.sub_client.flashfx_id
    return request


def _summary(order: PaymentOrder) -> str:
    r = order.recipient
    account = f"IBAN {r.iban}" if r.iban else f"{r.account_id_type} {r.account_no} {r.bic}".strip()
    return (
        f"Payment {order.code}: {order.size_currency} {order.size} "
        f"({order.from_currency} to {order.to_currency}) to {recipient_name(r)} ({account}), "
        f"reference {order.reference!r}"
    )


# --- Validation -------------------------------------------------------------------------------


def _validate(
    *,
    recipient: Recipient | None,
    sender: Sender | None,
    sub_client: SubClient | None,
    from_currency: str,
    to_currency: str,
    size: Any,
    size_currency: str,
    reason: str,
    source_of_funds: str,
    reference: str,
) -> None:
    if recipient is None:
        raise PaymentOrderError("recipient", "Choose a recipient.")
    if not recipient.flashfx_id:
        raise PaymentOrderError("recipient", "This recipient is not at FlashFX yet.")
    if recipient.deleted_at is not None:
        raise PaymentOrderError("recipient", "This recipient was deleted.")
    if recipient.account_id_type in LOCAL_ACCOUNT_TYPES:
        raise PaymentOrderError(
            "recipient", "This is an Australian account: send it a payout, not a payment abroad."
        )
    if recipient.account_id_type == "IBAN" and not recipient.iban:
        raise PaymentOrderError("recipient", "This recipient has no IBAN.")
    if sender is not None and sub_client is not None:
        raise PaymentOrderError(
            "sub_client", "FlashFX takes one sender: choose a sender or a sub-client, not both."
        )
    if sender is not None and not sender.flashfx_id:
        raise PaymentOrderError("sender", "This sender is not at FlashFX yet.")
    if sender is not None and sender.deleted_at is not None:
        raise PaymentOrderError("sender", "This sender was deleted.")
    if sub_client is not None and not sub_client.flashfx_id:
        raise PaymentOrderError("sub_client", "This sub-client is not at FlashFX yet.")
    _check_amount(
        from_currency=from_currency, to_currency=to_currency, size=size, size_currency=size_currency
    )
    if recipient.currency != to_currency:
        raise PaymentOrderError(
            "to_currency",
            f"This recipient's account is in {recipient.currency}; the payment must arrive in it.",
        )
    if reason not in PaymentOrder.Reason.values:
        raise PaymentOrderError("reason", "Choose the reason for the payment.")
    if source_of_funds not in PaymentOrder.SourceOfFunds.values:
        raise PaymentOrderError("source_of_funds", "Choose where the money comes from.")
    if not reference:
        raise PaymentOrderError("reference", "Give a reference: the recipient sees it.")
    if len(reference) > REFERENCE_MAX:
        raise PaymentOrderError("reference", f"At most {REFERENCE_MAX} characters.")
    if not PRINTABLE_ASCII.fullmatch(reference):
        raise PaymentOrderError(
            "reference", "Plain ASCII letters, digits, spaces and punctuation only (§2.2)."
        )
    if reference.strip().upper() in PLACEHOLDERS:
        raise PaymentOrderError(
            "reference", "A placeholder such as N/A is refused by FlashFX; give a real reference."
        )


def _check_quote(quote: QuoteView | None, **amount: Any) -> None:
    """The maker's quote must be live and for exactly these amounts."""
    if quote is None:
        raise PaymentOrderError(None, "Get a quote before asking for approval.")
    seen = {
        "from_currency": quote.from_currency,
        "to_currency": quote.to_currency,
        "size": quote.size,
        "size_currency": quote.size_currency,
    }
    if seen != amount:
        raise PaymentOrderError(
            None, "The quote shown is for other amounts; look at the fresh quote and submit again."
        )
    if quote.expired():
        raise PaymentOrderError(
            None, "The quote shown has expired; look at the fresh quote and submit again."
        )


# --- Moves ------------------------------------------------------------------------------------


# Compare-and-set moves with their PaymentOrderEvent and audit event (sending.py).
WORKFLOW = Workflow(
    model=PaymentOrder, event_model=PaymentOrderEvent, owner="order", audit_prefix="payment_order"
)
_event = WORKFLOW.event


def _move(order: PaymentOrder, *, old: str, to: str, **kwargs: Any) -> bool:
    return WORKFLOW.move(order, from_states=(old,), to=to, **kwargs)


def _ask_approval(order: PaymentOrder, *, by: Any) -> Approval:
    policy = payout_policy()
    if order.from_currency == policy.currency:
        required = policy.approvers_required(Decimal(order.quoted_from_amount))
    else:
        required = policy.tiers[-1].approvers
    return approvals.approval_request(
        action=ACTION,
        payload=payment_order_payload(order),
        summary=_summary(order),
        permission=APPROVE_PERMISSION,
        requested_by=by,
        required=required,
        ttl_hours=policy.ttl_hours,
    )


def payment_order_create(
    *,
    by: Any,
    sender: Sender | None,
    recipient: Recipient | None,
    sub_client: SubClient | None,
    from_currency: str,
    to_currency: str,
    size: Any,
    size_currency: str,
    reason: str,
    source_of_funds: str,
    reference: str,
    quote: QuoteView | None,
) -> PaymentOrder:
    """A new payment order, AWAITING_APPROVAL, with the maker's quote and its Approval; nothing
    is sent. PaymentOrderError says why not (and which field)."""
    if not by.has_perm(CREATE_PERMISSION):
        raise PaymentOrderError(None, "You do not have permission to start payments.")
    reference = (reference or "").strip()
    amount = {
        "from_currency": from_currency,
        "to_currency": to_currency,
        "size": size,
        "size_currency": size_currency,
    }
    _validate(
        recipient=recipient,
        sender=sender,
        sub_client=sub_client,
        reason=reason,
        source_of_funds=source_of_funds,
        reference=reference,
        **amount,
    )
    _check_quote(quote, **amount)
    if quote is None or recipient is None:  # refused by the checks above already
        raise PaymentOrderError(None, "Choose a recipient and get a quote first.")
    with transaction.atomic():
        order = PaymentOrder.objects.create(
            sender=sender,
            sub_client=sub_client,
            recipient=recipient,
            reason=reason,
            source_of_funds=source_of_funds,
            reference=reference,
            quoted_rate=quote.rate,
            quoted_fee=quote.fee,
            quoted_from_amount=quote.from_amount,
            quoted_to_amount=quote.to_amount,
            quoted_at=quote.quoted_at,
            quote_expires_at=quote.expires_at,
            created_by=by,
            **amount,
        )
        order.approval = _ask_approval(order, by=by)
        order.save(update_fields=["approval"])
        _event(
            order,
            old="",
            to=State.AWAITING_APPROVAL,
            actor=by,
            detail=f"quoted {quote.symbol} {quote.rate}: {from_currency} {quote.from_amount} "
            f"-> {to_currency} {quote.to_amount}",
        )
        audit.record(
            "payment_order.requested",
            actor=by,
            obj=order,
            after={"state": order.state},
            details={
                "code": order.code,
                "payload": order.approval.payload,
                "payload_hash": order.approval.payload_hash,
                "approvers_required": order.approval.required,
                "quote": {
                    "rate": quote.rate,
                    "from_amount": quote.from_amount,
                    "to_amount": quote.to_amount,
                    "quoted_at": quote.quoted_at,
                    "expires_at": quote.expires_at,
                },
            },
        )
    return order


def payment_order_cancel(*, order: PaymentOrder, by: Any) -> PaymentOrder:
    """AWAITING_APPROVAL -> CANCELLED by its maker; the approval is voided."""
    order.refresh_from_db()
    if order.created_by_id != by.pk:
        raise PaymentOrderError(None, "Only the member who started this payment can withdraw it.")
    with transaction.atomic():
        if not _move(
            order,
            old=State.AWAITING_APPROVAL,
            to=State.CANCELLED,
            actor=by,
            detail="withdrawn by its maker",
        ):
            raise PaymentOrderError(None, "Only a payment awaiting approval can be withdrawn.")
        if order.approval is not None:
            approvals.approval_void(order.approval, reason="Withdrawn by its maker.", actor=by)
    return order


# --- Approving --------------------------------------------------------------------------------


def approval_blocker(order: PaymentOrder, user: Any) -> str | None:
    """Why `user` may not approve or decline this payment now, or None if they may."""
    if order.created_by_id == user.pk:
        return "You started this payment; other members must approve it."
    if not user.has_perm(APPROVE_PERMISSION):
        return "Your role does not approve payments."
    approval = order.approval
    if order.state != State.AWAITING_APPROVAL or approval is None:
        return f"This payment is {order.get_state_display().lower()}."
    return approvals.signing_blocker(approval, user)


def _fresh(order: PaymentOrder) -> PaymentOrder:
    return PaymentOrder.objects.select_related("approval", "recipient", "sender", "sub_client").get(
        pk=order.pk
    )


def payment_order_approve(*, order: PaymentOrder, by: Any) -> PaymentOrder:
    """Sign the order's approval; the last signature needed makes it APPROVED with its outbox
    row, in that transaction. The caller enqueues the send after commit."""
    order = _fresh(order)
    if blocker := approval_blocker(order, by):
        raise PaymentOrderError(None, blocker)
    approval = order.approval
    if approval is None:  # approval_blocker says so first; never approved without one
        raise PaymentOrderError(None, "This payment has no approval to give.")
    # What would be sent now must be what approval was asked for (the recipient's bank
    # details may have changed since): otherwise it is asked about again, not approved.
    if approvals.payload_hash(payment_order_payload(order)) != approval.payload_hash:
        _reask(order, reason="What would be sent changed since approval was asked for.")
        raise PaymentOrderError(
            None,
            "What would be sent changed since approval was asked for (e.g. the recipient's "
            "bank details); approval has been asked for again. Check it and approve again.",
        )
    try:
        approvals.approval_approve(approval=approval, by=by)
    except approvals.ApprovalError as exc:
        raise PaymentOrderError(None, str(exc)) from None
    order.refresh_from_db()
    if order.state == State.AWAITING_APPROVAL:  # more signatures needed
        _event(
            order,
            old=State.AWAITING_APPROVAL,
            to=State.AWAITING_APPROVAL,
            actor=by,
            detail=(
                f"approved by {by.get_username()} "
                f"({approval.signatures.count()} of {approval.required})"
            ),
        )
    return order


def payment_order_decline(*, order: PaymentOrder, by: Any, note: str = "") -> PaymentOrder:
    """Decline the order's approval: DECLINED (through the approval's on_close)."""
    order = _fresh(order)
    if order.created_by_id == by.pk:
        raise PaymentOrderError(None, "You started this payment; withdraw it instead.")
    if blocker := approval_blocker(order, by):
        raise PaymentOrderError(None, blocker)
    if order.approval is None:
        raise PaymentOrderError(None, "This payment has no approval to decline.")
    try:
        approvals.approval_decline(approval=order.approval, by=by, note=note)
    except approvals.ApprovalError as exc:
        raise PaymentOrderError(None, str(exc)) from None
    order.refresh_from_db()
    return order


def _approved(approval: Approval) -> None:
    """The last signature: the outbox row (what must be sent, with the hash) and APPROVED, in
    the deciding transaction."""
    order = (
        PaymentOrder.objects.select_for_update(of=("self",))
        .select_related("recipient", "sender", "sub_client")
        .get(approval=approval)
    )
    PaymentOrderOutbox.objects.create(
        order=order, request=payment_input(order), payload_hash=approval.payload_hash
    )
    signers = ", ".join(u.get_username() for u in approvals.approval_signers(approval))
    if not _move(
        order,
        old=State.AWAITING_APPROVAL,
        to=State.APPROVED,
        actor=approval.decided_by,
        detail=f"approved by {signers}",
        details={"approval": str(approval.code), "payload_hash": approval.payload_hash},
    ):  # the approval and the order move together or not at all
        raise approvals.ApprovalError("This payment is no longer awaiting approval.")


def _closed(approval: Approval) -> None:
    order = PaymentOrder.objects.get(approval=approval)
    expired = approval.state == Approval.State.EXPIRED
    _move(
        order,
        old=State.AWAITING_APPROVAL,
        to=State.EXPIRED if expired else State.DECLINED,
        actor=None if expired else approval.decided_by,
        detail="not approved in time" if expired else (approval.decision_note or "declined"),
        details={"approval": str(approval.code), "note": approval.decision_note},
        error_message=(approval.decision_note or "")[:500],
    )


approvals.register_action(ACTION, on_approve=_approved, on_close=_closed)


def _reask(order: PaymentOrder, *, reason: str) -> None:
    """The approval no longer matches the order: void it and ask again (AWAITING_APPROVAL),
    requested by the maker as before. Inside the caller's transaction when there is one."""
    with transaction.atomic():
        order = _locked(order.pk)
        if order.approval is not None:
            approvals.approval_void(order.approval, reason=reason)
        old = order.state
        order.approval = _ask_approval(order, by=order.created_by)
        order.save(update_fields=["approval"])
        if old == State.AWAITING_APPROVAL:
            _event(order, old=old, to=old, actor=None, detail=f"{reason} Asked again.")
            audit.record(
                "payment_order.reasked", obj=order, details={"code": order.code, "reason": reason}
            )
        else:
            _move(
                order,
                old=old,
                to=State.AWAITING_APPROVAL,
                detail=f"{reason} Nothing was sent; approval asked for again.",
                details={"payload_hash": order.approval.payload_hash},
            )


# --- Sending, exactly once --------------------------------------------------------------------


def _locked(order_id: int) -> PaymentOrder:
    """The order, its row locked (FOR UPDATE OF the order alone), read with all that its hash
    is made of, as it is now."""
    return (
        PaymentOrder.objects.select_for_update(of=("self",))
        .select_related("approval", "recipient", "sender", "sub_client", "created_by")
        .get(pk=order_id)
    )


def _still_approved(order: PaymentOrder, outbox: PaymentOrderOutbox) -> bool:
    approval = order.approval
    return (
        approval is not None
        and approval.state == Approval.State.APPROVED
        and approvals.payload_intact(approval)
        and approval.payload_hash == outbox.payload_hash
        and approvals.payload_hash(payment_order_payload(order)) == outbox.payload_hash
    )


def _void_outbox(outbox: PaymentOrderOutbox, order: PaymentOrder) -> str:
    PaymentOrderOutbox.objects.filter(pk=outbox.pk).update(state=Box.VOIDED, done_at=timezone.now())
    _reask(
        order,
        reason="What would be sent no longer matches what was approved (e.g. the recipient's "
        "bank details changed).",
    )
    return Box.VOIDED


def outbox_state(outbox_id: int) -> str:
    state = PaymentOrderOutbox.objects.filter(pk=outbox_id).values_list("state", flat=True).first()
    return state or "missing"


def payment_order_submit(outbox_id: int) -> str:
    """Claim this outbox row (APPROVED -> SUBMITTING, committed before any call; a row another
    transaction holds is skipped) and make its one createPayment call with the order's code as
    externalId and idempotencyKey. Returns the outbox state afterwards, "unknown" when
    FlashFX's answer never came (payment_order_recover settles it)."""
    with transaction.atomic():
        outbox = (
            PaymentOrderOutbox.objects.select_for_update(skip_locked=True)
            .filter(pk=outbox_id, state=Box.APPROVED)
            .first()
        )
        if outbox is None:  # sent already, voided, gone, or held by another sender now
            return outbox_state(outbox_id)
        order = _locked(outbox.order_id)
        if order.payment_id is not None:
            # FlashFX already has a payment under this code: never a second one.
            PaymentOrderOutbox.objects.filter(pk=outbox.pk).update(
                state=Box.SUBMITTED, done_at=timezone.now()
            )
            _move(
                order,
                old=State.APPROVED,
                to=State.SUBMITTED,
                detail="FlashFX already has a payment under this code; nothing sent again",
            )
            return Box.SUBMITTED
        if not _still_approved(order, outbox):
            return _void_outbox(outbox, order)
        now = timezone.now()
        PaymentOrderOutbox.objects.filter(pk=outbox.pk, state=Box.APPROVED).update(
            state=Box.SUBMITTING, attempts=F("attempts") + 1, claimed_at=now
        )
        outbox.state, outbox.attempts, outbox.claimed_at = Box.SUBMITTING, outbox.attempts + 1, now
        _move(
            order,
            old=State.APPROVED,
            to=State.SUBMITTING,
            detail=f"createPayment, attempt {outbox.attempts}",
            details={"attempt": outbox.attempts},
        )
    return _send(outbox, order)


def _wire(request: dict[str, Any]) -> dict[str, Any]:
    return {**request, "size": Decimal(request["size"])}


def _send(outbox: PaymentOrderOutbox, order: PaymentOrder) -> str:
    """The call, with the stored request; what FlashFX said is recorded."""
    asked_at = timezone.now()
    try:
        wire = flashfx_client().create_payment(_wire(outbox.request))
    except FlashFXRejected as exc:
        if exc.code == "DUPLICATE_IDEMPOTENCY_KEY":
            # Our key is in use at FlashFX: a payment exists under it. Never "failed":
            # recovery reads it back by externalId (§5.13).
            return _no_answer(outbox, order, exc)
        return _failed(outbox, order, exc)
    except FlashFXError as exc:
        return _no_answer(outbox, order, exc)
    return _submitted(outbox, order, wire, asked_at=asked_at, source="reply")


def _no_answer(outbox: PaymentOrderOutbox, order: PaymentOrder, exc: FlashFXError) -> str:
    return WORKFLOW.no_answer(outbox, order, exc, operation="createPayment")


def _failed(outbox: PaymentOrderOutbox, order: PaymentOrder, exc: FlashFXRejected) -> str:
    return WORKFLOW.failed(outbox, order, exc)


def _submitted(
    outbox: PaymentOrderOutbox, order: PaymentOrder, wire: Any, *, asked_at: datetime, source: str
) -> str:
    """FlashFX has it: mirror the payment, whose on_change (payments_changed) links it to the
    order and moves it to SUBMITTED; linked here too when the mirror had this version already
    (a webhook got here first). The outbox row's state afterwards. The version is dated when
    we asked (payouts._submitted says why)."""
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                registry.get("payments").apply(wire, observed_at=asked_at, source=source)
                payment = Payment.objects.flashfx_id(wire.id).get()
                _link(order.pk, payment, source=source)
                return outbox_state(outbox.pk)
        except IntegrityError:
            # A webhook mirrored it between our read and our insert: once more, an update.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _link(order_id: int, payment: Payment, *, source: str) -> None:
    """Link the mirrored payment to its order, and SUBMITTING -> SUBMITTED; decided on the order
    as it is under lock (idempotent)."""
    order = PaymentOrder.objects.select_for_update().get(pk=order_id)
    if order.payment_id is None:
        order.payment = payment
        order.save(update_fields=["payment"])
    elif order.payment_id != payment.pk:
        log.error("payment order %s: a second payment %s", order.code, payment.flashfx_id)
        return
    if order.state != State.SUBMITTING:
        # Not sent by us yet (payment_order_submit sees the link and sends nothing), or
        # moved on already: a later status of the same payment.
        return
    PaymentOrderOutbox.objects.filter(order=order, state=Box.SUBMITTING).update(
        state=Box.SUBMITTED, done_at=timezone.now(), last_error=""
    )
    _move(
        order,
        old=State.SUBMITTING,
        to=State.SUBMITTED,
        detail=f"FlashFX payment {payment.flashfx_id} ({payment.flashfx_status}): "
        f"{payment.from_currency} {payment.from_amount} -> "
        f"{payment.to_currency} {payment.to_amount}",
        details={"payment": payment.flashfx_id, "status": payment.flashfx_status, "source": source},
    )


def payment_order_recover(outbox_id: int) -> str:
    """A SUBMITTING outbox row (no answer, or its worker died at any point): look the payment
    up at FlashFX by externalId first; found -> SUBMITTED; not found -> the same request again
    with the same idempotencyKey. Never a blind create. "wait" while the last call may still be
    running; FlashFXUnavailable on the look-up propagates (retry later)."""
    outbox = PaymentOrderOutbox.objects.get(pk=outbox_id)
    if outbox.state != Box.SUBMITTING:
        return outbox.state
    if outbox.claimed_at and outbox.claimed_at > timezone.now() - timedelta(
        seconds=settle_seconds()
    ):
        return "wait"
    order = PaymentOrder.objects.get(pk=outbox.order_id)
    asked_at = timezone.now()
    found = flashfx_client().payments(externalId=order.code)
    if found:
        if len(found) > 1:  # externalId is not unique at FlashFX (§5.14); ours is one order
            log.error("payment order %s: %d payments carry its code", order.code, len(found))
        first = min(found, key=lambda p: (p.created_at or timezone.now(), p.id))
        audit.record(
            "payment_order.found",
            obj=order,
            details={"code": order.code, "payment": first.id, "count": len(found)},
        )
        return _submitted(outbox, order, first, asked_at=asked_at, source="payment check")
    with transaction.atomic():
        locked = PaymentOrderOutbox.objects.select_for_update().get(pk=outbox.pk)
        if locked.state != Box.SUBMITTING or locked.claimed_at != outbox.claimed_at:
            return locked.state  # another recovery got here first
        order = _locked(order.pk)
        if not _still_approved(order, locked):
            # Not at FlashFX, and no longer what was approved: it is never sent.
            PaymentOrderOutbox.objects.filter(pk=locked.pk).update(
                state=Box.VOIDED, done_at=timezone.now()
            )
            _reask(order, reason="What would be sent no longer matches what was approved.")
            return Box.VOIDED
        PaymentOrderOutbox.objects.filter(pk=locked.pk).update(
            attempts=F("attempts") + 1, claimed_at=timezone.now()
        )
        locked.refresh_from_db()
        _event(
            order,
            old=State.SUBMITTING,
            to=State.SUBMITTING,
            actor=None,
            detail="not found at FlashFX; createPayment again with the same key, "
            f"attempt {locked.attempts}",
        )
        audit.record(
            "payment_order.resubmitting",
            obj=order,
            details={"code": order.code, "attempt": locked.attempts},
        )
    return _send(locked, order)


def payment_orders_due(*, stuck_after: timedelta) -> tuple[list[int], list[int]]:
    """For the sweep: outbox rows approved but never claimed, and rows left submitting."""
    before = timezone.now() - stuck_after
    open_rows = PaymentOrderOutbox.objects.values_list("pk", flat=True)
    approved = list(open_rows.filter(state=Box.APPROVED, created_at__lte=before))
    submitting = list(open_rows.filter(state=Box.SUBMITTING, claimed_at__lte=before))
    return approved, submitting


# --- FlashFX's news ---------------------------------------------------------------------------


def payments_changed(changes: list) -> None:
    """A payment was mirrored or its status moved (reply, webhook, sync; in that transaction):
    a new one whose externalId is an order's code is linked to it, and an order still
    SUBMITTING moves to SUBMITTED (the news came before our reply was recorded). Its statuses
    after that are the mirror's (OPEN -> CLOSED / FAILED / CANCELLED, §3.6.3)."""
    ours = [c.obj for c in changes if (c.obj.external_id or "").startswith("PM-")]
    if not ours:
        return
    orders = {
        o.code: o
        for o in PaymentOrder.objects.filter(code__in={p.external_id for p in ours}).only(
            "pk", "code", "state", "payment_id"
        )
    }
    for payment in ours:
        order = orders.get(payment.external_id)
        if order is None:
            continue
        if order.payment_id == payment.pk and order.state != State.SUBMITTING:
            continue
        _link(order.pk, payment, source="mirror")
