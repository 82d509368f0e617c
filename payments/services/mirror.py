"""Applying FlashFX's version of deposits, withdrawals and payments to their mirrors.

One service per entity, used by sync, by webhooks and by the replies to our own mutations, so
that ordering, races and backward moves are handled in one place (backoffice.mirror).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from backoffice.mirror import Applied, Outcome, Remote, apply_remote, apply_remote_many
from flashfx import types
from flashfx.schema import enum_values
from parties.models import SubClient

from ..models import Deposit, Payment, Withdrawal


def _blank(value: str | None) -> str:
    return value or ""


def _unknown(model, status: str, **codes: tuple[str | None, frozenset[str]]) -> tuple[str, ...]:
    """Values we do not know: stored as received, and flagged on the row (API.md §3.3.4)."""
    flags = [] if model.STATUS_ORDER.is_known(status) else [f"status {status}"]
    flags += [
        f"{name} {value}" for name, (value, known) in codes.items() if value and value not in known
    ]
    return tuple(flags)


def _sub_client_ids(flashfx_ids: Iterable[str | None]) -> dict[str, int]:
    wanted = {i for i in flashfx_ids if i}
    if not wanted:
        return {}
    return dict(SubClient.objects.filter(flashfx_id__in=wanted).values_list("flashfx_id", "pk"))


def deposit_remote(
    remote: types.Deposit, observed_at: datetime, sub_clients: dict[str, int]
) -> Remote:
    sender = remote.sender or {}
    return Remote(
        flashfx_id=remote.id,
        observed_at=observed_at,
        status=remote.status,
        unknown=_unknown(Deposit, remote.status),
        fields={
            "external_id": _blank(remote.external_id),
            "flashfx_status": remote.status,
            "status_message": _blank(remote.status_message),
            "amount": remote.amount,
            "currency": remote.currency,
            "total_fee": remote.total_fee,
            "external_reference": _blank(remote.external_reference),
            "sub_client_id": sub_clients.get(remote.sub_client_id or ""),
            "sub_client_flashfx_id": _blank(remote.sub_client_id),
            "sender_account_name": _blank(sender.get("accountName")),
            "sender_bank_name": _blank(sender.get("bankName")),
            "sender_bsb": _blank(sender.get("bsb")),
            "sender_account_no": _blank(sender.get("accountNo")),
            "flashfx_created_at": remote.created_at,
            "cleared_at": remote.cleared_at,
            "refund_amount": remote.refund_amount,
            "refund_reason": _blank(remote.refund_reason),
            "refunded_at": remote.refunded_at,
            "rail": _blank(remote.rail),
            "rail_service": _blank(remote.rail_service),
            "raw": remote.raw,
        },
    )


def withdrawal_remote(
    remote: types.Withdrawal, observed_at: datetime, sub_clients: dict[str, int]
) -> Remote:
    recipient = remote.recipient or {}
    return Remote(
        flashfx_id=remote.id,
        observed_at=observed_at,
        status=remote.status,
        unknown=_unknown(
            Withdrawal, remote.status, rejectCode=(remote.reject_code, enum_values("RejectCode"))
        ),
        fields={
            "external_id": _blank(remote.external_id),
            "flashfx_status": remote.status,
            "status_message": _blank(remote.status_message),
            "reject_code": _blank(remote.reject_code),
            "amount": remote.amount,
            "currency": remote.currency,
            "total_fee": remote.total_fee,
            "external_reference": _blank(remote.external_reference),
            "sub_client_id": sub_clients.get(remote.sub_client_id or ""),
            "sub_client_flashfx_id": _blank(remote.sub_client_id),
            "recipient_flashfx_id": _blank(recipient.get("id")),
            "recipient_name": _blank(recipient.get("displayName")),
            "recipient_bsb": _blank(recipient.get("bsb")),
            "recipient_account_no": _blank(recipient.get("accountNo")),
            "recipient_payid": _blank(recipient.get("payid")),
            "flashfx_created_at": remote.created_at,
            "cleared_at": remote.cleared_at,
            "rejected_at": remote.rejected_at,
            "refunded_at": remote.refunded_at,
            "refund_amount": remote.refund_amount,
            "refund_reason": _blank(remote.refund_reason),
            "rail": _blank(remote.rail),
            "rail_service": _blank(remote.rail_service),
            "raw": remote.raw,
        },
    )


def payment_remote(
    remote: types.Payment, observed_at: datetime, sub_clients: dict[str, int]
) -> Remote:
    recipient = remote.recipient or {}
    return Remote(
        flashfx_id=remote.id,
        observed_at=observed_at,
        status=remote.status,
        unknown=_unknown(Payment, remote.status),
        fields={
            "external_id": _blank(remote.external_id),
            "flashfx_status": remote.status,
            "size": remote.size,
            "currency": _blank(remote.currency),
            "from_currency": remote.from_currency,
            "to_currency": remote.to_currency,
            "from_amount": remote.from_amount,
            "to_amount": remote.to_amount,
            "external_reference": _blank(remote.external_reference),
            "sub_client_id": sub_clients.get(remote.sub_client_id or ""),
            "sub_client_flashfx_id": _blank(remote.sub_client_id),
            "recipient_flashfx_id": _blank(recipient.get("id")),
            "recipient_name": _blank(recipient.get("displayName")),
            "flashfx_created_at": remote.created_at,
            "raw": remote.raw,
        },
    )


REMOTES = {Deposit: deposit_remote, Withdrawal: withdrawal_remote, Payment: payment_remote}


def transfer_remote(model, remote, observed_at: datetime) -> Remote:
    """One deposit, withdrawal or payment as FlashFX's version in mirror columns."""
    return REMOTES[model](remote, observed_at, _sub_client_ids([remote.sub_client_id]))


def _apply_one(model, remote, observed_at: datetime, authoritative: bool) -> Applied:
    return apply_remote(
        model, transfer_remote(model, remote, observed_at), authoritative=authoritative
    )


def deposit_apply_remote(
    *, remote: types.Deposit, observed_at: datetime, authoritative: bool = False
) -> Applied:
    """Create or update the Deposit mirror; its status never moves back along §3.2."""
    return _apply_one(Deposit, remote, observed_at, authoritative)


def withdrawal_apply_remote(
    *, remote: types.Withdrawal, observed_at: datetime, authoritative: bool = False
) -> Applied:
    """Create or update the Withdrawal mirror; only FAILED -> PENDING may go back (§3.3.3)."""
    return _apply_one(Withdrawal, remote, observed_at, authoritative)


def payment_apply_remote(
    *, remote: types.Payment, observed_at: datetime, authoritative: bool = False
) -> Applied:
    """Create or update the Payment mirror; OPEN is the only non-final status (§3.6.3)."""
    return _apply_one(Payment, remote, observed_at, authoritative)


def transfers_apply_remote_many(
    model, remotes: list, observed_at: datetime, changed: list[str] | None = None
) -> dict[Outcome, int]:
    """A sync window of one kind at once: the same rule as the single services, in bulk."""
    sub_clients = _sub_client_ids(r.sub_client_id for r in remotes)
    build = REMOTES[model]
    return apply_remote_many(model, [build(r, observed_at, sub_clients) for r in remotes], changed)
