"""How senders, recipients and sub-clients are mirrored (docs/flashfx.md §3.4, §3.5, §3.9).

One MirrorSpec per entity (mirrors/registry.py): sync, reconciliation and webhook processing
read these declarations and nothing else about the entities.
"""

from __future__ import annotations

from typing import Any

from flashfx import types
from mirrors.base import blank
from mirrors.registry import MirrorSpec, register

from .models import Recipient, Sender, SubClient


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


def recipient_columns(wire: types.Recipient, context: Any = None) -> dict[str, Any]:
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
        "bsb": blank(wire.bsb),
        "account_no": blank(wire.account_no),
        "payid": blank(wire.payid),
        "iban": blank(wire.iban),
        "bic": blank(wire.bic),
        "flashfx_created_at": wire.created_at,
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
