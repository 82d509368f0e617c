"""The documented state machines (docs/flashfx.md §3.2, §3.3.3, §3.6.3, §3.9.4), their money and webhooks.

Every status change goes through ``transition``: it checks the edge against the documented
table, applies the balance effect, stamps the fields, queues the webhook and schedules the next
automatic step. The clock (automatic steps) and the control endpoint (forced steps) both call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import conf, ledger, webhooks
from .errors import BusinessFailure, InvalidTransition
from .models import Deposit, Payment, ScheduledStep, SubClient, Withdrawal

# --- Withdrawals (§3.3.3) ------------------------------------------------------------------
WITHDRAWAL_EDGES = {
    ("INITIALISED", "REVIEWING"),
    ("REVIEWING", "PENDING"),
    ("REVIEWING", "CANCELLED"),
    ("INITIALISED", "PENDING"),
    ("PENDING", "CONFIRMED"),
    ("PENDING", "FAILED"),
    ("CONFIRMED", "FAILED"),
    ("FAILED", "REFUNDED"),
    ("FAILED", "CANCELLED"),
    ("FAILED", "PENDING"),
}
WITHDRAWAL_EVENTS = {
    "INITIALISED": "withdrawal_initiated",
    "REVIEWING": "withdrawal_reviewing",
    "PENDING": "withdrawal_pending",
    "CONFIRMED": "withdrawal_completed",
    "FAILED": "withdrawal_failed",
    "REFUNDED": "withdrawal_refunded",
    "CANCELLED": "withdrawal_cancelled",
}
WITHDRAWAL_MESSAGES = {
    "INITIALISED": "Withdrawal initiated",
    "REVIEWING": "Awaiting manual compliance",
    "PENDING": "Sent to recipient bank",
    "CONFIRMED": "Transaction Confirmed",
    "FAILED": "Rejected by recipient bank",
    "REFUNDED": "Payout reversal",
}
# Standard statusMessage per rejectCode (§3.3.4, paraphrased from the 2024 table).
REJECT_MESSAGES = {
    "CANCELLATION_REQUESTED_BY_PARTICIPANT": "Rejected upon request",
    "CANCELLATION_BY_RECIPIENT_FI": "Rejected by recipient's FI",
    "COMPLIANCE_DECLINED": "Rejected: does not meet compliance requirements",
    "COMPLIANCE_DECLINED_EXTERNAL": "Rejected: does not meet compliance requirements",
    "SENDER_INADEQUATE_DATA": "Sender name details missing or invalid",
    "SENDER_INVALID_ADDRESS": "Sender address invalid",
    "SENDER_INCOMPLETE_ADDRESS": "Sender address missing",
    "RECIPIENT_INADEQUATE_DATA": "Recipient name details missing or invalid",
    "RECIPIENT_INVALID_ADDRESS": "Recipient address invalid",
    "RECIPIENT_INCOMPLETE_ADDRESS": "Recipient address missing",
    "DATA_ENQUIRY_TIME_ELAPSED": "No response within the specified time",
    "DATA_ENQUIRY_RESPONSE_INADEQUATE": "Response to the data enquiry was inadequate",
    "SOURCE_OF_FUNDS_INADEQUATE": "Source of funds inadequate",
    "DUPLICATE_TRANSACTION": "Declined as duplicate",
    "TECHNICAL_ISSUE": "Technical issue",
    "RECIPIENT_ACCOUNT_CLOSED": "Blocked or closed account",
    "RECIPIENT_INVALID_ACCOUNT_NUMBER": "Missing or invalid account number",
    "RECIPIENT_INVALID_BANK_CODE": "Invalid BSB",
    "RECIPIENT_INVALID_ACCOUNT": "Currency cannot be applied to the account",
    "RECIPIENT_COUNTRY_NOT_SUPPORTED": "Recipient country not supported",
    "RECIPIENT_CURRENCY_NOT_SUPPORTED": "Recipient currency not supported",
    "EXPIRED": "Expired",
    "FRAUD": "Rejected: suspected fraud",
}
DEFAULT_REFUND_REASON = "No account or incorrect account number"  # decision §5.19 (FAIL_ACC)

# UAT outcome keywords anywhere in externalReference (§3.3.6) and the steps they take (§5.19).
# SEND_RFI needs a member with `compliance` access; the sandbox has none, so it behaves like
# FAIL_AML, as the docs say it then does.
WITHDRAWAL_PLANS = {
    "HALT_AML": ["REVIEWING"],
    "FAIL_AML": ["REVIEWING", "CANCELLED"],
    "SEND_RFI": ["REVIEWING", "CANCELLED"],
    "PUSH_AML": ["REVIEWING", "PENDING", "CONFIRMED"],
    "FAIL_ACC": ["PENDING", "CONFIRMED", "FAILED", "REFUNDED"],
}
WITHDRAWAL_HAPPY_PLAN = ["PENDING", "CONFIRMED"]

# --- Deposits (§3.2) -----------------------------------------------------------------------
DEPOSIT_EDGES = {
    ("INITIALISED", "REVIEWING"),
    ("INITIALISED", "CONFIRMED"),
    ("REVIEWING", "CONFIRMED"),
    ("CONFIRMED", "REFUNDING"),
    ("REVIEWING", "REFUNDING"),
    ("REFUNDING", "REFUNDED"),
    # Decision §5.21: manual cancellation in FlashConnect, before the money cleared.
    ("INITIALISED", "CANCELLED"),
    ("REVIEWING", "CANCELLED"),
}
DEPOSIT_EVENTS = {
    "INITIALISED": "deposit_initiated",
    "REVIEWING": "deposit_reviewing",
    "CONFIRMED": "deposit_cleared",
    "REFUNDING": "deposit_refunding",
    "REFUNDED": "deposit_refunded",
    "CANCELLED": "deposit_cancelled",
}
DEPOSIT_MESSAGES = {
    "INITIALISED": "Deposit initiated",
    "REVIEWING": "Awaiting manual compliance",
    "CONFIRMED": "Deposit cleared",
    "REFUNDING": "Refund initiated",
    "REFUNDED": "Deposit refunded",
    "CANCELLED": "Cancelled by: ops@sandbox.local : ",
}

# --- Payments (§3.6.3) -----------------------------------------------------------------------
# CURRENCY_CONVERTED is not a status: the FX leg runs while the payment stays OPEN (§3.6.3).
CONVERTED = "CURRENCY_CONVERTED"
PAYMENT_EDGES = {("OPEN", CONVERTED), ("OPEN", "CLOSED"), ("OPEN", "FAILED"), ("OPEN", "CANCELLED")}
PAYMENT_EVENTS = {
    CONVERTED: "currency_converted",
    "CLOSED": "payment_complete",
    "FAILED": "payment_failed",
    "CANCELLED": "payment_cancelled",
}
PAYMENT_PLAN = [CONVERTED, "CLOSED"]  # decision §5.37

# --- Sub-clients (§3.9.4) ------------------------------------------------------------------
SUB_CLIENT_STATUSES = ("INITIATED", "ACTIVE", "UNAPPROVED", "FAILED_KYC", "DEACTIVATED", "DISABLED")
SUB_CLIENT_EDGES = {
    ("INITIATED", "ACTIVE"),
    ("INITIATED", "UNAPPROVED"),
    ("UNAPPROVED", "ACTIVE"),
    ("UNAPPROVED", "FAILED_KYC"),
    ("ACTIVE", "DEACTIVATED"),
    ("DEACTIVATED", "ACTIVE"),
} | {(status, "DISABLED") for status in SUB_CLIENT_STATUSES if status != "DISABLED"}
SUB_CLIENT_EVENTS = {s: f"subclient_{s.lower()}" for s in SUB_CLIENT_STATUSES}


@dataclass(frozen=True)
class Machine:
    model: type
    edges: set[tuple[str, str]]
    events: dict[str, str]


MACHINES = {
    "deposit": Machine(Deposit, DEPOSIT_EDGES, DEPOSIT_EVENTS),
    "withdrawal": Machine(Withdrawal, WITHDRAWAL_EDGES, WITHDRAWAL_EVENTS),
    "payment": Machine(Payment, PAYMENT_EDGES, PAYMENT_EVENTS),
    "subclient": Machine(SubClient, SUB_CLIENT_EDGES, SUB_CLIENT_EVENTS),
}
KIND_OF = {machine.model: kind for kind, machine in MACHINES.items()}


def withdrawal_plan(external_reference: str) -> list[str]:
    """The first keyword found in the reference decides the path (§3.3.6)."""
    found = [(external_reference.find(k), k) for k in WITHDRAWAL_PLANS if k in external_reference]
    return list(WITHDRAWAL_PLANS[min(found)[1]]) if found else list(WITHDRAWAL_HAPPY_PLAN)


def start(entity: Any, plan: list[str]) -> None:
    """A new entity: queue its creation webhook (none for outbound payments) and its first step."""
    event = MACHINES[KIND_OF[type(entity)]].events.get(entity.status)
    if event:
        webhooks.emit(entity, event)
    entity.plan = plan
    entity.save(update_fields=["plan"])
    _schedule_next(entity)


def transition(entity: Any, to: str, *, forced: bool = False, **details: Any) -> Any:
    """Move along a documented edge, with its money, fields and webhook.

    A forced move (control endpoint) drops the automatic plan: the entity then stays where it
    was put until it is moved again. Raises InvalidTransition for an undocumented edge.
    """
    kind = KIND_OF[type(entity)]
    machine = MACHINES[kind]
    if (entity.status, to) not in machine.edges or (to == CONVERTED and entity.converted):
        raise InvalidTransition(
            f"{kind} {entity.id}: {entity.status} -> {to} is not a documented transition"
        )
    with transaction.atomic():
        APPLY[kind](entity, to, **details)
        if to != CONVERTED:
            entity.status = to
        if forced:
            entity.plan = []
            ScheduledStep.objects.filter(kind=kind, entity_id=entity.id, done_at=None).update(
                done_at=timezone.now(), outcome="superseded"
            )
        entity.save()
        webhooks.emit(entity, machine.events[to])
        if not forced:
            _schedule_next(entity)
    return entity


def _schedule_next(entity: Any) -> None:
    if not entity.plan:
        return
    to = entity.plan.pop(0)
    entity.save(update_fields=["plan"])
    delay = conf.get_config()["step_delay_seconds"]
    ScheduledStep.objects.create(
        kind=KIND_OF[type(entity)],
        entity_id=entity.id,
        from_status=entity.status,
        to_status=to,
        due_at=timezone.now() + timedelta(seconds=delay),
    )


def run_due_steps(limit: int = 100) -> int:
    """Apply every automatic step that has fallen due; returns how many were applied."""
    applied = 0
    due = ScheduledStep.objects.filter(done_at=None, due_at__lte=timezone.now()).order_by(
        "due_at", "id"
    )
    for step_id in list(due.values_list("id", flat=True)[:limit]):
        with transaction.atomic():
            step = (
                ScheduledStep.objects.select_for_update().filter(pk=step_id, done_at=None).first()
            )
            if step is None:  # taken by a concurrent tick
                continue
            entity = MACHINES[step.kind].model.objects.get(pk=step.entity_id)
            step.done_at = timezone.now()
            if entity.status == step.from_status:
                transition(entity, step.to_status)
                step.outcome = "applied"
                applied += 1
            else:  # moved by hand in the meantime
                step.outcome = "skipped"
            step.save(update_fields=["done_at", "outcome"])
    return applied


# --- Effects of each move ------------------------------------------------------------------


def _apply_withdrawal(
    w: Withdrawal, to: str, *, reject_code: str | None = None, refund_reason: str | None = None
) -> None:
    now = timezone.now()
    if to == "CONFIRMED":
        w.cleared_at = now
    if to == "REFUNDED":  # the bank returned it: amount back, fee kept (§3.3.3)
        ledger.credit(
            w.currency,
            w.amount,
            kind="WITHDRAWAL_RETURN",
            description=f"Payout reversal {w.id}",
            transaction_id=w.id,
        )
        w.refund_amount, w.refunded_at = w.amount, now
        w.refund_reason = refund_reason or DEFAULT_REFUND_REASON
    if to == "CANCELLED":  # amount back, fee kept, from REVIEWING too (decision §5.20)
        ledger.credit(
            w.currency,
            w.amount,
            kind="WITHDRAWAL_RETURN",
            description=f"Withdrawal cancelled {w.id}",
            transaction_id=w.id,
        )
        default_code = (
            "COMPLIANCE_DECLINED" if w.status == "REVIEWING" else "CANCELLATION_BY_RECIPIENT_FI"
        )
        w.reject_code = reject_code or default_code
        w.rejected_at = now
        w.status_message = REJECT_MESSAGES.get(w.reject_code, "Rejected")
    else:
        w.status_message = WITHDRAWAL_MESSAGES[to]


def _apply_deposit(
    d: Deposit, to: str, *, refund_amount: Decimal | None = None, refund_reason: str | None = None
) -> None:
    now = timezone.now()
    if to == "CONFIRMED":  # pending -> cleared (decision §5.22)
        ledger.add_pending(d.currency, -d.amount)
        ledger.credit(
            d.currency,
            d.amount,
            kind="DEPOSIT",
            description=f"Deposit {d.external_reference}".strip(),
            transaction_id=d.id,
        )
        if d.total_fee:
            ledger.debit(
                d.currency,
                d.total_fee,
                kind="DEPOSIT_FEE",
                description=f"Deposit fee {d.id}",
                transaction_id=d.id,
            )
        d.cleared_at = now
    elif to == "REFUNDING" and d.status == "CONFIRMED":  # refundDeposit or FlashConnect rejection
        if refund_amount is not None and refund_amount > d.amount:
            raise BusinessFailure(
                "INVALID_AMOUNT", f"Refund {refund_amount} is more than the deposit's {d.amount}"
            )
        d.refund_amount = refund_amount or d.amount
        d.refund_reason = refund_reason or "Rejected by client"
        d.refunded_at = now  # §4.6 shows refundedAt on deposit_refunding too; REFUNDED updates it
        ledger.debit(
            d.currency,
            d.refund_amount,
            kind="DEPOSIT_REFUND",
            description=f"Deposit refund {d.id}",
            transaction_id=d.id,
        )
    elif (
        to == "REFUNDING"
    ):  # compliance rejects while reviewing: never cleared, all of it goes back
        ledger.add_pending(d.currency, -d.amount)
        d.refund_amount, d.refund_reason = d.amount, refund_reason or "Rejected by compliance"
        d.refunded_at = now
    elif to == "CANCELLED":
        ledger.add_pending(d.currency, -d.amount)
    elif to == "REFUNDED":
        d.refunded_at = now
    d.status_message = DEPOSIT_MESSAGES[to]


def _apply_payment(p: Payment, to: str) -> None:
    now = timezone.now()
    if to == CONVERTED:
        p.converted = True
        message = f"Converted {p.from_amount} {p.from_currency} to {p.to_amount} {p.to_currency}"
    elif to == "CLOSED":
        message = "Delivered to the recipient's bank"
    else:  # FAILED or CANCELLED: final, the from-amount goes back (decision §5.24)
        ledger.credit(
            p.from_currency,
            p.from_amount,
            kind="PAYMENT_RETURN",
            description=f"Payment {to.lower()} {p.id}",
            transaction_id=p.id,
        )
        message = f"Payment {to.lower()}"
    p.history = [*p.history, {"createdAt": now.isoformat(), "message": message}]


def _apply_sub_client(s: SubClient, to: str) -> None:
    """No money moves; deposits to a disabled sub-client are simply not booked (§3.9.3)."""


APPLY = {
    "deposit": _apply_deposit,
    "withdrawal": _apply_withdrawal,
    "payment": _apply_payment,
    "subclient": _apply_sub_client,
}
