"""Sub-clients at FlashFX (docs/flashfx.md §3.9): created here, with the BSB and account
number FlashFX gives them, to share with the customer they are for."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from backoffice import audit
from mirrors.client import flashfx_client

from ..mirrors import SUB_CLIENTS
from ..models import SubClient
from .calls import PartyError, call, external_id

CREATED = "party.sub_client.created"

# Our field -> CreateSubClientInput's (flashfx/schema.graphql); the address is nested.
INPUT = {
    "legal_name": "legalName",
    "business_number": "businessNumber",
    "trading_as_name": "tradingAsName",
    "first_name": "firstName",
    "middle_name": "middleName",
    "last_name": "lastName",
    "email": "email",
    "mobile": "mobile",
    "dob": "dob",
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


def sub_client_input(fields: dict[str, Any]) -> dict[str, Any]:
    data = {INPUT[k]: v for k, v in fields.items() if k in INPUT and v not in (None, "")}
    if data.get("dob") is not None and not isinstance(data["dob"], str):
        data["dob"] = data["dob"].isoformat()
    address = {ADDRESS[k]: v for k, v in fields.items() if k in ADDRESS and v not in (None, "")}
    if address:
        data["address"] = address
    return data


def sub_client_create(*, fields: dict[str, Any], actor: Any) -> SubClient:
    """Create the sub-client at FlashFX (INITIATED while FlashFX checks it, §3.9.4) and mirror
    it with its BSB and account number. PartyRefused names the refused field."""
    data = sub_client_input({**fields, "external_id": external_id(fields.get("external_id", ""))})
    client = flashfx_client()

    def look_up() -> Any:
        found = call(
            lambda: client.sub_clients(externalId=data["externalId"]),
            what="look up the sub-client",
            fields=FIELDS,
            unknown=None,
        )
        if not found:
            raise PartyError(
                "FlashFX did not answer, and has no such sub-client: nothing was created. "
                "Try again."
            )
        return found[0]

    wire = call(
        lambda: client.create_sub_client(data),
        what="create the sub-client",
        fields=FIELDS,
        unknown=look_up,
    )
    with transaction.atomic():
        applied = SUB_CLIENTS.apply(wire, observed_at=timezone.now(), source="reply")
        sub_client = SubClient.objects.get(pk=applied.obj.pk)
        audit.record(
            CREATED,
            actor=actor,
            obj=sub_client,
            after={
                "full_name": sub_client.full_name,
                "client_type": sub_client.client_type,
                "bsb": sub_client.bsb,
                "account_no": sub_client.account_no,
                "status": sub_client.flashfx_status,
                "external_id": sub_client.external_id,
            },
        )
    return sub_client
