"""What more than one sandbox test file sends, and the small helpers they share.

A plain module beside the tests (pytest puts this folder on sys.path): `from sandbox_payloads
import ...`. Only what at least two files use lives here; a file's own payloads stay in it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from harness import (  # noqa: F401 (re-exported for the sandbox tests)
    API_EMAIL,
    API_PASSWORD,
    DEPOSIT_SENDER,
    WEBHOOK_SECRET,
    loads,
    wait_until,
)

# --- Parties ------------------------------------------------------------------------------------

BSB_RECIPIENT = {
    "accountIdType": "BSB",
    "currency": "AUD",
    "bsb": "062000",
    "accountNo": "12345678",
    "firstName": "Mia",
    "lastName": "Ng",
}
PAYID_RECIPIENT = {
    "accountIdType": "PAYID",
    "currency": "AUD",
    "payid": "pay@harbour.example",
    "companyName": "Harbour Supplies Pty Ltd",
}
SENDER = {
    "firstName": "Lena",
    "lastName": "Fischer",
    "dob": "1991-02-03",
    "email": "lena@example.de",
    "mobile": "+49301234567",
    "address": {"street": "Hauptstr 5", "suburb": "Berlin", "postcode": "10115", "country": "DE"},
    "idDoc": {"type": "passport", "docNumber": "C01X00T47", "country": "DE"},
}
SUB_CLIENT = {
    "firstName": "Ada",
    "lastName": "Lovelace",
    "email": "ada@example.com",
    "dob": "1985-12-10",
    "address": {
        "streetNo": "1",
        "street": "George St",
        "suburb": "Sydney",
        "state": "NSW",
        "postcode": "2000",
        "country": "AU",
    },
    "externalId": "sc-ada",
}
# Who pays in a deposit made through POST /_sandbox/deposits unless a test says otherwise.

CREATE_SUB_CLIENT = (
    "mutation C($input: CreateSubClientInput!) { createSubClient(input: $input)"
    " { success subClient { id fullName accountNo bsb } } }"
)


def create_sub_client(sandbox, data: dict = SUB_CLIENT) -> dict:
    """A sub-client that must be created: its id, fullName, accountNo and bsb."""
    reply = sandbox.data(CREATE_SUB_CLIENT, {"input": data})["createSubClient"]
    assert reply["success"] is True, reply
    return reply["subClient"]


# --- Withdrawals --------------------------------------------------------------------------------

WITHDRAWAL_FIELDS = (
    "id status statusMessage rejectCode amount totalFee currency externalId externalReference"
    " createdAt clearedAt rejectedAt refundedAt refundAmount refundReason rail callbackUri"
    " sender { id nickName firstName lastName companyName }"
    " recipient { id displayName accountIdType bsb accountNo payid }"
    " subClient { id fullName }"
)
CREATE_WITHDRAWAL = (
    "mutation Payout($input: CreateWithdrawalInput!) { createWithdrawal(input: $input) {"
    f" success code message withdrawal {{ {WITHDRAWAL_FIELDS} }} }} }}"
)
# A valid payout of 250.00 to Mia Ng, as an integer amount (plain JSON, no Decimal needed).
WITHDRAWAL = {
    "amount": 250,
    "currency": "AUD",
    "externalId": "po-778",
    "externalReference": "INV 778",
    "recipient": BSB_RECIPIENT,
}


def create_withdrawal(sandbox, amount: str = "100.00", **fields: Any) -> dict:
    """createWithdrawal's reply (success or business failure); GraphQL errors fail the test.

    The amount goes on the wire as the exact decimal written; the recipient is BSB_RECIPIENT
    unless the fields name one.
    """
    payload = {"amount": Decimal(amount), "currency": "AUD", **fields}
    if "recipient" not in payload and "recipientId" not in payload:
        payload["recipient"] = BSB_RECIPIENT
    return sandbox.data(CREATE_WITHDRAWAL, {"input": payload})["createWithdrawal"]


def created_withdrawal(sandbox, amount: str = "100.00", **fields: Any) -> dict:
    """A withdrawal that must be created."""
    reply = create_withdrawal(sandbox, amount, **fields)
    assert reply["success"] is True, reply
    assert reply["code"] == "SUCCESS"
    return reply["withdrawal"]


# --- Moving things along ------------------------------------------------------------------------


def hold(sandbox) -> None:
    """Nothing moves by itself any more: only forced transitions change a status."""
    sandbox.configure(step_delay_seconds=3600)


def force(sandbox, kind: str, entity_id: str, to: str, **details: Any) -> dict:
    """A forced transition (POST /_sandbox/<kind>/<id>/advance) that must be accepted."""
    response = sandbox.advance(kind, entity_id, to, **details)
    assert response.status_code == 200, response.text
    body = loads(response.content)
    assert body["status"] == to
    return body
