"""How deposits, withdrawals and payments are mirrored (docs/flashfx.md §3.2, §3.3, §3.6).

One MirrorSpec per entity (mirrors/registry.py): sync, reconciliation and webhook processing
read these declarations and nothing else about the entities. Each transfer points at the
sub-client it belongs to, so these are synced after the sub-clients.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from flashfx import types
from flashfx.schema import enum_values
from mirrors.apply import Change
from mirrors.base import blank
from mirrors.registry import BalanceEffect, ImpliedLine, MirrorSpec, register
from parties import selectors as parties

from .models import Deposit, Payment, Withdrawal

ZERO = Decimal("0.00")


def sub_clients_of(wires: Iterable[Any]) -> dict[str, int]:
    """The mirrored sub-clients a batch of transfers points at: FlashFX id -> our key."""
    return parties.sub_client_pks(flashfx_ids=(wire.sub_client_id for wire in wires))


def _sub_client(wire: Any, sub_clients: Mapping[str, int]) -> dict[str, Any]:
    return {
        "sub_client_id": sub_clients.get(wire.sub_client_id or ""),
        "sub_client_flashfx_id": blank(wire.sub_client_id),
    }


def deposit_columns(wire: types.Deposit, sub_clients: Mapping[str, int]) -> dict[str, Any]:
    sender = wire.sender or {}
    return {
        "status_message": blank(wire.status_message),
        "amount": wire.amount,
        "currency": wire.currency,
        "total_fee": wire.total_fee,
        "external_reference": blank(wire.external_reference),
        **_sub_client(wire, sub_clients),
        "sender_account_name": blank(sender.get("accountName")),
        "sender_bank_name": blank(sender.get("bankName")),
        "sender_bsb": blank(sender.get("bsb")),
        "sender_account_no": blank(sender.get("accountNo")),
        "flashfx_created_at": wire.created_at,
        "cleared_at": wire.cleared_at,
        "refund_amount": wire.refund_amount,
        "refund_reason": blank(wire.refund_reason),
        "refunded_at": wire.refunded_at,
        "rail": blank(wire.rail),
        "rail_service": blank(wire.rail_service),
    }


def withdrawal_columns(wire: types.Withdrawal, sub_clients: Mapping[str, int]) -> dict[str, Any]:
    recipient = wire.recipient or {}
    return {
        "status_message": blank(wire.status_message),
        "reject_code": blank(wire.reject_code),
        "amount": wire.amount,
        "currency": wire.currency,
        "total_fee": wire.total_fee,
        "external_reference": blank(wire.external_reference),
        **_sub_client(wire, sub_clients),
        "recipient_flashfx_id": blank(recipient.get("id")),
        "recipient_name": blank(recipient.get("displayName")),
        "recipient_bsb": blank(recipient.get("bsb")),
        "recipient_account_no": blank(recipient.get("accountNo")),
        "recipient_payid": blank(recipient.get("payid")),
        "flashfx_created_at": wire.created_at,
        "cleared_at": wire.cleared_at,
        "rejected_at": wire.rejected_at,
        "refunded_at": wire.refunded_at,
        "refund_amount": wire.refund_amount,
        "refund_reason": blank(wire.refund_reason),
        "rail": blank(wire.rail),
        "rail_service": blank(wire.rail_service),
    }


def payment_columns(wire: types.Payment, sub_clients: Mapping[str, int]) -> dict[str, Any]:
    recipient = wire.recipient or {}
    return {
        "size": wire.size,
        "currency": blank(wire.currency),
        "from_currency": wire.from_currency,
        "to_currency": wire.to_currency,
        "from_amount": wire.from_amount,
        "to_amount": wire.to_amount,
        "external_reference": blank(wire.external_reference),
        **_sub_client(wire, sub_clients),
        "recipient_flashfx_id": blank(recipient.get("id")),
        "recipient_name": blank(recipient.get("displayName")),
        "flashfx_created_at": wire.created_at,
    }


# The balance each movement implies: the sandbox's ledger rules (docs/flashfx.md §3.3.3,
# §5.15, §5.20, §5.22-§5.24). Reconciliation's balance proof adds them up against FlashFX's balances.


def deposit_balance_effect(d: Deposit) -> BalanceEffect | None:
    if d.flashfx_status in ("INITIALISED", "REVIEWING"):
        return BalanceEffect(d.currency, pending=d.amount)
    if d.cleared_at is None:
        return None
    # Cleared: in, less its fee and whatever was refunded.
    refunded = (d.refund_amount or 0) if d.flashfx_status in ("REFUNDING", "REFUNDED") else 0
    return BalanceEffect(d.currency, cleared=d.amount - (d.total_fee or 0) - refunded)


def withdrawal_balance_effect(w: Withdrawal) -> BalanceEffect:
    cleared = -(w.amount + (w.total_fee or 0))
    if w.flashfx_status in ("REFUNDED", "CANCELLED"):  # the amount comes back, the fee does not
        cleared += w.amount
    return BalanceEffect(w.currency, cleared=cleared)


def payment_balance_effect(p: Payment) -> BalanceEffect | None:
    if p.from_amount is None or p.flashfx_status in ("FAILED", "CANCELLED"):
        return None
    return BalanceEffect(p.from_currency, cleared=-p.from_amount)


# The lines each movement puts on FlashFX's statement (the sandbox's ledger writes the same;
# docs/flashfx.md §3.1), for a day's statement beside the mirror (mirrors/statement.py).


def deposit_statement_lines(d: Deposit) -> list[ImpliedLine]:
    if d.cleared_at is None:  # pending money is not on the statement
        return []
    lines = [ImpliedLine("DEPOSIT", d.currency, d.amount, d.cleared_at)]
    if d.total_fee:
        lines.append(ImpliedLine("DEPOSIT_FEE", d.currency, -d.total_fee, d.cleared_at))
    if d.refund_amount and d.flashfx_status in ("REFUNDING", "REFUNDED"):
        lines.append(ImpliedLine("DEPOSIT_REFUND", d.currency, -d.refund_amount, d.refunded_at))
    return lines


def withdrawal_statement_lines(w: Withdrawal) -> list[ImpliedLine]:
    lines = [ImpliedLine("WITHDRAWAL", w.currency, -w.amount, w.flashfx_created_at)]
    if w.total_fee:
        lines.append(ImpliedLine("WITHDRAWAL_FEE", w.currency, -w.total_fee, w.flashfx_created_at))
    if w.flashfx_status in ("REFUNDED", "CANCELLED"):  # the amount back, the fee kept
        at = w.refunded_at if w.flashfx_status == "REFUNDED" else None
        lines.append(ImpliedLine("WITHDRAWAL_RETURN", w.currency, w.amount, at))
    return lines


def payment_statement_lines(p: Payment) -> list[ImpliedLine]:
    if p.from_amount is None:
        return []
    lines = [ImpliedLine("PAYMENT", p.from_currency, -p.from_amount, p.flashfx_created_at)]
    if p.flashfx_status in ("FAILED", "CANCELLED"):
        lines.append(ImpliedLine("PAYMENT_RETURN", p.from_currency, p.from_amount, None))
    return lines


def deposits_changed(changes: list[Change]) -> None:
    """Our follow-up to new deposits and status moves (payments/services/arrivals.py)."""
    from .services import arrivals  # imported here: the services import this module

    arrivals.deposits_changed(changes)


def mark_new_deposits(deposits: list[Deposit]) -> None:
    """A new deposit's third-party mark, set before it is written (payments/services/matching.py)."""
    from .services import matching  # imported here: the services import this module

    matching.mark_new_deposits(deposits)


def withdrawals_changed(changes: list[Change]) -> None:
    """A withdrawal whose externalId is a payout's code is linked to it, and its payout moves
    on (payments/services/payouts.py)."""
    from .services import payouts  # imported here: the services import this module

    payouts.withdrawals_changed(changes)


def payments_changed(changes: list[Change]) -> None:
    """A payment whose externalId is a payment order's code is linked to it, and its order
    moves on (payments/services/payment_orders.py)."""
    from .services import payment_orders  # imported here: the services import this module

    payment_orders.payments_changed(changes)


DEPOSITS = MirrorSpec(
    name="deposits",
    model=Deposit,
    wire=types.Deposit,
    read_one="deposit",
    read_many="deposits",
    columns=deposit_columns,
    batch_context=sub_clients_of,
    prepare_new=mark_new_deposits,
    open_statuses=("INITIALISED", "REVIEWING", "REFUNDING"),
    events={
        "deposit_initiated": "INITIALISED",
        "deposit_reviewing": "REVIEWING",
        "deposit_cleared": "CONFIRMED",
        "deposit_cancelled": "CANCELLED",
        "deposit_refunding": "REFUNDING",
        "deposit_refunded": "REFUNDED",
    },
    event_columns={
        "amount": ("amount",),
        "totalFee": ("total_fee",),
        "currency": ("currency",),
        "externalReference": ("external_reference",),
        "clearedAt": ("cleared_at",),
        "statusMessage": ("status_message",),
        "sender": ("sender_account_name", "sender_bank_name", "sender_bsb", "sender_account_no"),
        "subClient": ("sub_client_id", "sub_client_flashfx_id"),
        "refundAmount": ("refund_amount",),
        "refundReason": ("refund_reason",),
        "refundedAt": ("refunded_at",),
    },
    compared=(
        "flashfx_status",
        "amount",
        "total_fee",
        "refund_amount",
        "cleared_at",
        "refunded_at",
    ),
    balance_effect=deposit_balance_effect,
    statement_lines=deposit_statement_lines,
    statement_dated_by=("cleared_at", "refunded_at"),
    depends_on=("subclients",),
    on_change=deposits_changed,
)

WITHDRAWALS = MirrorSpec(
    name="withdrawals",
    model=Withdrawal,
    wire=types.Withdrawal,
    read_one="withdrawal",
    read_many="withdrawals",
    columns=withdrawal_columns,
    batch_context=sub_clients_of,
    codes={"rejectCode": ("reject_code", enum_values("RejectCode"))},  # §3.3.4: "may grow"
    # CONFIRMED is not final: the bank may return the money days later (§3.3.3).
    open_statuses=("INITIALISED", "REVIEWING", "PENDING", "CONFIRMED", "FAILED"),
    events={
        "withdrawal_initiated": "INITIALISED",
        "withdrawal_reviewing": "REVIEWING",
        "withdrawal_pending": "PENDING",
        "withdrawal_completed": "CONFIRMED",
        "withdrawal_failed": "FAILED",
        "withdrawal_refunded": "REFUNDED",
        "withdrawal_cancelled": "CANCELLED",
    },
    event_columns={
        "amount": ("amount",),
        "totalFee": ("total_fee",),
        "currency": ("currency",),
        "externalId": ("external_id",),
        "subClient": ("sub_client_id", "sub_client_flashfx_id"),
        "statusMessage": ("status_message",),
        "clearedAt": ("cleared_at",),
        "refundAmount": ("refund_amount",),
        "refundReason": ("refund_reason",),
        "refundedAt": ("refunded_at",),
        "rejectCode": ("reject_code",),
        "rejectedAt": ("rejected_at",),
        "recipient": ("recipient_name", "recipient_bsb", "recipient_account_no"),
    },
    compared=(
        "flashfx_status",
        "amount",
        "total_fee",
        "refund_amount",
        "reject_code",
        "cleared_at",
        "refunded_at",
    ),
    balance_effect=withdrawal_balance_effect,
    statement_lines=withdrawal_statement_lines,
    statement_dated_by=("flashfx_created_at", "refunded_at"),
    depends_on=("subclients",),
    on_change=withdrawals_changed,
)

PAYMENTS = MirrorSpec(
    name="payments",
    model=Payment,
    wire=types.Payment,
    read_one="payment",
    read_many="payments",
    columns=payment_columns,
    batch_context=sub_clients_of,
    open_statuses=("OPEN",),
    # §3.6.3: currency_converted is the FX leg; the payment stays OPEN.
    events={
        "payment_created": "OPEN",
        "currency_converted": None,
        "payment_complete": "CLOSED",
        "payment_failed": "FAILED",
        "payment_cancelled": "CANCELLED",
    },
    event_columns={
        "fromAmount": ("from_amount",),
        "fromCurrency": ("from_currency",),
        "toAmount": ("to_amount",),
        "toCurrency": ("to_currency",),
        "externalId": ("external_id",),
        "subClient": ("sub_client_id", "sub_client_flashfx_id"),
    },
    compared=("flashfx_status", "from_amount", "to_amount"),
    balance_effect=payment_balance_effect,
    statement_lines=payment_statement_lines,
    statement_dated_by=("flashfx_created_at",),
    depends_on=("subclients",),
    on_change=payments_changed,
)

register(DEPOSITS, WITHDRAWALS, PAYMENTS)
