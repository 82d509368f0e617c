"""Applying FlashFX's version of senders, recipients and sub-clients to their mirrors."""

from __future__ import annotations

from datetime import datetime

from backoffice.mirror import Applied, Outcome, Remote, apply_remote, apply_remote_many
from flashfx import types

from .models import Recipient, Sender, SubClient


def _blank(value: str | None) -> str:
    return value or ""


def sender_remote(remote: types.Sender, observed_at: datetime) -> Remote:
    return Remote(
        flashfx_id=remote.id,
        observed_at=observed_at,
        fields={
            "external_id": _blank(remote.external_id),
            "nick_name": _blank(remote.nick_name),
            "first_name": _blank(remote.first_name),
            "middle_name": _blank(remote.middle_name),
            "last_name": _blank(remote.last_name),
            "company_name": _blank(remote.company_name),
            "email": _blank(remote.email),
            "country": _blank(remote.country),
            "flashfx_created_at": remote.created_at,
            "raw": remote.raw,
        },
    )


def recipient_remote(remote: types.Recipient, observed_at: datetime) -> Remote:
    return Remote(
        flashfx_id=remote.id,
        observed_at=observed_at,
        fields={
            "external_id": _blank(remote.external_id),
            "nick_name": _blank(remote.nick_name),
            "display_name": _blank(remote.display_name),
            "account_id_type": remote.account_id_type,
            "currency": remote.currency,
            "country": _blank(remote.country),
            "first_name": _blank(remote.first_name),
            "last_name": _blank(remote.last_name),
            "company_name": _blank(remote.company_name),
            "email": _blank(remote.email),
            "bsb": _blank(remote.bsb),
            "account_no": _blank(remote.account_no),
            "payid": _blank(remote.payid),
            "iban": _blank(remote.iban),
            "bic": _blank(remote.bic),
            "flashfx_created_at": remote.created_at,
            "raw": remote.raw,
        },
    )


def sub_client_remote(remote: types.SubClient, observed_at: datetime) -> Remote:
    order = SubClient.STATUS_ORDER
    return Remote(
        flashfx_id=remote.id,
        observed_at=observed_at,
        status=remote.status,
        unknown=() if order.is_known(remote.status) else (f"status {remote.status}",),
        fields={
            "external_id": _blank(remote.external_id),
            "flashfx_status": remote.status,
            "client_type": _blank(remote.client_type),
            "full_name": _blank(remote.full_name),
            "legal_name": _blank(remote.legal_name),
            "bsb": _blank(remote.bsb),
            "account_no": _blank(remote.account_no),
            "flashfx_created_at": remote.created_at,
            "raw": remote.raw,
        },
    )


def sender_apply_remote(
    *, remote: types.Sender, observed_at: datetime, authoritative: bool = False
) -> Applied:
    """Create or update the Sender mirror from FlashFX's version (sync, replies, reconciliation)."""
    return apply_remote(Sender, sender_remote(remote, observed_at), authoritative=authoritative)


def recipient_apply_remote(
    *, remote: types.Recipient, observed_at: datetime, authoritative: bool = False
) -> Applied:
    """Create or update the Recipient mirror from FlashFX's version."""
    return apply_remote(
        Recipient, recipient_remote(remote, observed_at), authoritative=authoritative
    )


def sub_client_apply_remote(
    *, remote: types.SubClient, observed_at: datetime, authoritative: bool = False
) -> Applied:
    """Create or update the SubClient mirror; its status never moves back along §3.9.4."""
    return apply_remote(
        SubClient, sub_client_remote(remote, observed_at), authoritative=authoritative
    )


def sub_client_for(flashfx_id: str | None) -> SubClient | None:
    """The mirrored sub-client a transfer points at, if we have it yet."""
    if not flashfx_id:
        return None
    return SubClient.objects.filter(flashfx_id=flashfx_id).first()


REMOTES = {Sender: sender_remote, Recipient: recipient_remote, SubClient: sub_client_remote}


def parties_apply_remote_many(
    model, remotes: list, observed_at: datetime, changed: list[str] | None = None
) -> dict[Outcome, int]:
    """A sync window of senders, recipients or sub-clients: the same rule as one by one, in bulk."""
    build = REMOTES[model]
    return apply_remote_many(model, [build(r, observed_at) for r in remotes], changed)
