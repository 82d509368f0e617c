"""Senders at FlashFX (docs/flashfx.md §3.4): create, edit, delete, then mirror the reply.

As recipients.py: one call to FlashFX; on success the reply is mirrored and audited in one
transaction; FlashFX's refusal changes nothing and names the field it refuses.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from backoffice import audit
from mirrors.client import flashfx_client

from ..mirrors import SENDERS
from ..models import Sender
from .calls import PartyError, call, external_id, party_delete

CREATED = "party.sender.created"
UPDATED = "party.sender.updated"
DELETED = "party.sender.deleted"

# Our field -> SenderInput's (flashfx/schema.graphql); the address is nested.
INPUT = {
    "first_name": "firstName",
    "middle_name": "middleName",
    "last_name": "lastName",
    "company_name": "companyName",
    "email": "email",
    "mobile": "mobile",
    "external_id": "externalId",
}
ADDRESS = {
    "street": "street",
    "suburb": "suburb",
    "state": "state",
    "postcode": "postcode",
    "country": "country",
}
FIELDS = {name: name for name in INPUT} | {f"address_{k}": k for k in ADDRESS}
SHOWN = (
    "first_name",
    "middle_name",
    "last_name",
    "company_name",
    "email",
    "country",
    "external_id",
)


def sender_input(fields: dict[str, Any]) -> dict[str, Any]:
    data = {INPUT[k]: v for k, v in fields.items() if k in INPUT and v not in (None, "")}
    address = {ADDRESS[k]: v for k, v in fields.items() if k in ADDRESS and v not in (None, "")}
    if address:
        data["address"] = address
    return data


def _snapshot(sender: Sender) -> dict[str, Any]:
    return {f: getattr(sender, f) for f in SHOWN}


def _mirror(wire: Any) -> Sender:
    applied = SENDERS.apply(wire, observed_at=timezone.now(), source="reply")
    return Sender.objects.get(pk=applied.obj.pk)


def sender_create(*, fields: dict[str, Any], actor: Any) -> Sender:
    """Create the sender at FlashFX and mirror it. PartyRefused names the refused field."""
    data = sender_input({**fields, "external_id": external_id(fields.get("external_id", ""))})
    client = flashfx_client()

    def look_up() -> Any:
        found = call(
            lambda: client.senders(externalId=data["externalId"]),
            what="look up the sender",
            fields=FIELDS,
            unknown=None,
        )
        if not found:
            raise PartyError(
                "FlashFX did not answer, and has no such sender: nothing was created. Try again."
            )
        return found[0]

    wire = call(
        lambda: client.create_sender(data), what="create the sender", fields=FIELDS, unknown=look_up
    )
    with transaction.atomic():
        sender = _mirror(wire)
        audit.record(CREATED, actor=actor, obj=sender, after=_snapshot(sender))
    return sender


def sender_update(*, sender: Sender, fields: dict[str, Any], actor: Any) -> Sender:
    """Change the sender at FlashFX and mirror it."""
    if sender.deleted_at is not None:
        raise PartyError("This sender was deleted at FlashFX; it cannot be changed.")
    before = _snapshot(sender)
    client = flashfx_client()
    wire = call(
        lambda: client.update_sender(sender.flashfx_id, sender_input(fields)),
        what="change the sender",
        fields=FIELDS,
        unknown=None,
    )
    with transaction.atomic():
        updated = _mirror(wire)
        audit.record(UPDATED, actor=actor, obj=updated, before=before, after=_snapshot(updated))
    return updated


def sender_delete(*, sender: Sender, actor: Any) -> Sender:
    """Delete the sender at FlashFX; our row stays, marked deleted."""
    return party_delete(
        sender,
        remote=lambda: flashfx_client().delete_sender(sender.flashfx_id),
        what="delete the sender",
        fields=FIELDS,
        action=DELETED,
        snapshot=_snapshot,
        actor=actor,
    )
