"""Recipients at FlashFX (docs/flashfx.md §3.5): create, edit, delete, then mirror the reply.

Each service makes one call to FlashFX; on success the reply goes through the mirror's apply
rule (parties/mirrors.py, which also dates the bank details for the cooling period) with an
audit event, in one transaction; then, for an Australian BSB account that is new or whose
details changed, a Confirmation of Payee check (payee.py), which is advisory and never undoes
or stops anything. FlashFX's refusal changes nothing here and names the field it refuses.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from backoffice import audit
from mirrors.client import flashfx_client

from ..mirrors import RECIPIENTS
from ..models import Recipient
from . import payee
from .calls import PartyError, call, external_id, party_delete

CREATED = "party.recipient.created"
UPDATED = "party.recipient.updated"
DELETED = "party.recipient.deleted"

# Our field -> RecipientInput's (flashfx/schema.graphql).
INPUT = {
    "first_name": "firstName",
    "middle_name": "middleName",
    "last_name": "lastName",
    "company_name": "companyName",
    "nick_name": "nickName",
    "email": "email",
    "mobile": "mobile",
    "account_id_type": "accountIdType",
    "currency": "currency",
    "bsb": "bsb",
    "account_no": "accountNo",
    "iban": "iban",
    "bic": "bic",
    "payid": "payid",
    "aba": "aba",
    "clabe": "clabe",
    "cnaps": "cnaps",
    "sort_code": "sortCode",
    "ifsc": "ifsc",
    "external_id": "externalId",
}
FIELDS = {name: name for name in INPUT}  # FlashFX's names in snake_case are ours
SHOWN = ("display_name", "account_id_type", "currency", "email", "external_id")


def recipient_input(fields: dict[str, Any]) -> dict[str, Any]:
    """RecipientInput from our fields; blanks are left out (FlashFX refuses placeholders,
    docs/flashfx.md §1.4, and keeps what an update does not name)."""
    return {INPUT[k]: v for k, v in fields.items() if k in INPUT and v not in (None, "")}


def _snapshot(recipient: Recipient) -> dict[str, Any]:
    return {f: getattr(recipient, f) for f in (*SHOWN, *recipient.bank_details)}


def _mirror(wire: Any) -> Recipient:
    applied = RECIPIENTS.apply(wire, observed_at=timezone.now(), source="reply")
    return Recipient.objects.get(pk=applied.obj.pk)


def _check_payee(recipient: Recipient, actor: Any) -> None:
    if payee.payee_check_applies(recipient):
        payee.payee_check_run(recipient=recipient, actor=actor)


def recipient_create(*, fields: dict[str, Any], actor: Any) -> Recipient:
    """Create the recipient at FlashFX and mirror it (its bank details new: cooling starts),
    then check the payee. PartyRefused names the field FlashFX refused."""
    data = recipient_input({**fields, "external_id": external_id(fields.get("external_id", ""))})
    client = flashfx_client()

    def look_up() -> Any:
        # No answer: FlashFX may have created it. Our externalId tells; never a second create.
        found = call(
            lambda: client.recipients(externalId=data["externalId"]),
            what="look up the recipient",
            fields=FIELDS,
            unknown=None,
        )
        if not found:
            raise PartyError(
                "FlashFX did not answer, and has no such recipient: nothing was created. Try again."
            )
        return found[0]

    wire = call(
        lambda: client.create_recipient(data),
        what="create the recipient",
        fields=FIELDS,
        unknown=look_up,
    )
    with transaction.atomic():
        recipient = _mirror(wire)
        audit.record(
            CREATED,
            actor=actor,
            obj=recipient,
            after=_snapshot(recipient),
            details={"flashfx_id": wire.id},
        )
    _check_payee(recipient, actor)
    return recipient


def recipient_update(*, recipient: Recipient, fields: dict[str, Any], actor: Any) -> Recipient:
    """Change the recipient at FlashFX (never its account type, docs/flashfx.md §3.5) and
    mirror it; new bank details start the cooling period again; they, or a new name, are
    checked again."""
    if recipient.deleted_at is not None:
        raise PartyError("This recipient was deleted at FlashFX; it cannot be changed.")
    fields = {k: v for k, v in fields.items() if k != "account_id_type"}
    before = _snapshot(recipient)
    client = flashfx_client()
    wire = call(
        lambda: client.update_recipient(recipient.flashfx_id, recipient_input(fields)),
        what="change the recipient",
        fields=FIELDS,
        unknown=None,
    )
    with transaction.atomic():
        updated = _mirror(wire)
        audit.record(UPDATED, actor=actor, obj=updated, before=before, after=_snapshot(updated))
    # The check is of a name against an account: new bank details or a new name ask again.
    if updated.bank_details != recipient.bank_details or updated.name != recipient.name:
        _check_payee(updated, actor)
    return updated


def recipient_delete(*, recipient: Recipient, actor: Any) -> Recipient:
    """Delete the recipient at FlashFX; our row stays, marked deleted (what pointed at it
    keeps its history). FlashFX not knowing it any more counts as deleted."""
    return party_delete(
        recipient,
        remote=lambda: flashfx_client().delete_recipient(recipient.flashfx_id),
        what="delete the recipient",
        fields=FIELDS,
        action=DELETED,
        snapshot=_snapshot,
        actor=actor,
    )
