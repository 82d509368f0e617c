"""How senders, recipients and sub-clients are mirrored (docs/flashfx.md §3.4, §3.5, §3.9).

One MirrorSpec per entity (mirrors/registry.py): sync, reconciliation and webhook processing
read these declarations and nothing else about the entities.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.utils import timezone

from flashfx import types
from mirrors.base import blank
from mirrors.registry import MirrorSpec, register

from .models import BANK_DETAILS, Recipient, Sender, SubClient


def sender_columns(wire: types.Sender, context: Any = None) -> dict[str, Any]:
    return {
        "nick_name": blank(wire.nick_name),
        "first_name": blank(wire.first_name),
        "middle_name": blank(wire.middle_name),
        "last_name": blank(wire.last_name),
        "company_name": blank(wire.company_name),
        "email": blank(wire.email),
        "country": blank(wire.country),
        "flashfx_created_at": wire.created_at,
    }


def recipients_held(wires: Iterable[types.Recipient]) -> dict[str, tuple[dict, datetime | None]]:
    """The bank details we hold for these recipients and since when (one query per batch),
    so that recipient_columns can tell whether FlashFX's version changes them."""
    ids = [w.id for w in wires if w.id]
    if not ids:
        return {}
    rows = Recipient.objects.flashfx_ids(ids).values(
        "flashfx_id", "bank_details_changed_at", *BANK_DETAILS
    )
    return {
        r["flashfx_id"]: ({f: r[f] for f in BANK_DETAILS}, r["bank_details_changed_at"])
        for r in rows
    }


def bank_details_since(
    wire: types.Recipient, details: dict[str, str], held: tuple[dict, datetime | None] | None
) -> datetime:
    """When we first saw these bank details: kept while they stay the same; now when they
    differ from the ones we hold, whoever changed them; for a recipient we have never seen,
    when FlashFX created it (a recipient made years ago elsewhere is not new to the company),
    or now if FlashFX gives no time or one in the future."""
    now = timezone.now()
    if held is not None:
        old, since = held
        if old == details and since is not None:
            return since
        return now
    created = wire.created_at
    return created if created is not None and created <= now else now


def recipient_columns(wire: types.Recipient, context: Any = None) -> dict[str, Any]:
    details = {
        "bsb": blank(wire.bsb),
        "account_no": blank(wire.account_no),
        "payid": blank(wire.payid),
        "iban": blank(wire.iban),
        "bic": blank(wire.bic),
    }
    held = (context or {}).get(wire.id)
    return {
        "nick_name": blank(wire.nick_name),
        "display_name": blank(wire.display_name),
        "account_id_type": wire.account_id_type,
        "currency": wire.currency,
        "country": blank(wire.country),
        "first_name": blank(wire.first_name),
        "last_name": blank(wire.last_name),
        "company_name": blank(wire.company_name),
        "email": blank(wire.email),
        **details,
        "flashfx_created_at": wire.created_at,
        "bank_details_changed_at": bank_details_since(wire, details, held),
    }


def sub_client_columns(wire: types.SubClient, context: Any = None) -> dict[str, Any]:
    return {
        "client_type": blank(wire.client_type),
        "full_name": blank(wire.full_name),
        "legal_name": blank(wire.legal_name),
        "bsb": blank(wire.bsb),
        "account_no": blank(wire.account_no),
        "flashfx_created_at": wire.created_at,
    }


SUB_CLIENTS = MirrorSpec(
    name="subclients",
    model=SubClient,
    wire=types.SubClient,
    read_one="sub_client",
    read_many="sub_clients",
    columns=sub_client_columns,
    # §3.9.4: temporary until FlashFX has checked the sub-client.
    open_statuses=("INITIATED", "UNAPPROVED"),
    one_status_per_query=True,
    events={f"subclient_{s.lower()}": s for s in SubClient.STATUS_ORDER.ranks},
    event_columns={"fullName": ("full_name",), "externalId": ("external_id",)},
    compared=("flashfx_status", "full_name", "bsb", "account_no"),
)

SENDERS = MirrorSpec(
    name="senders",
    model=Sender,
    wire=types.Sender,
    read_one="sender",
    read_many="senders",
    columns=sender_columns,
    compared=("first_name", "last_name", "company_name", "email"),
)

RECIPIENTS = MirrorSpec(
    name="recipients",
    model=Recipient,
    wire=types.Recipient,
    read_one="recipient",
    read_many="recipients",
    columns=recipient_columns,
    batch_context=recipients_held,
    compared=(
        "account_id_type",
        "currency",
        "bsb",
        "account_no",
        "payid",
        "iban",
        "display_name",
    ),
)

register(SUB_CLIENTS, SENDERS, RECIPIENTS)
