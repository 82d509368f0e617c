"""What the command, task and admin tests of the mirrors share: the back-office's own FlashFX
client pointed at the test sandbox (or at nothing), and a little of every entity to mirror.

A plain module beside the tests (pytest puts this folder on sys.path): `from app_flashfx
import ...`.
"""

from __future__ import annotations

from decimal import Decimal

from harness import wait_until

from mirrors.client import flashfx_client
from mirrors.registry import registry
from parties.models import Recipient, Sender, SubClient
from payments.models import Deposit, Payment, Withdrawal

MODELS = {
    "subclients": SubClient,
    "senders": Sender,
    "recipients": Recipient,
    "deposits": Deposit,
    "withdrawals": Withdrawal,
    "payments": Payment,
}
RECIPIENT = {
    "accountIdType": "BSB",
    "currency": "AUD",
    "bsb": "062000",
    "accountNo": "12345678",
    "firstName": "Mia",
    "lastName": "Ng",
}
GBP_RECIPIENT = {
    "accountIdType": "IBAN",
    "currency": "GBP",
    "iban": "GB29NWBK60161331926819",
    "firstName": "Oliver",
    "lastName": "Bennett",
}
SUB_CLIENT = {
    "firstName": "Ada",
    "lastName": "Lovelace",
    "dob": "1985-12-10",
    "address": {
        "street": "1 George St",
        "suburb": "Sydney",
        "state": "NSW",
        "postcode": "2000",
        "country": "AU",
    },
}


def populate(sandbox) -> None:
    """Some of every entity (old imported deposits too), through the back-office's own client,
    then wait until the sandbox's clock has nothing left to move."""
    client = flashfx_client()
    sandbox.control(
        "deposits/import",
        {
            "count": 6,
            "amount": "100.00",
            "createdFrom": "2025-12-01T00:00:00Z",
            "createdTo": "2026-02-01T00:00:00Z",
        },
    )
    sandbox.fund("500.00")
    sub_client = client.create_sub_client(SUB_CLIENT)
    sandbox.receive_deposit("12.34", subClientId=sub_client.id)
    client.create_sender({"companyName": "Acme Trading Pty Ltd"})
    client.create_recipient(RECIPIENT)
    client.create_withdrawal({"amount": Decimal("0.1"), "currency": "AUD", "recipient": RECIPIENT})
    client.create_payment(
        {
            "fromCurrency": "AUD",
            "toCurrency": "GBP",
            "size": Decimal("100"),
            "recipient": GBP_RECIPIENT,
        }
    )

    def settled() -> bool:
        return (
            all(d.status == "CONFIRMED" for d in client.deposits())
            and all(w.status == "CONFIRMED" for w in client.withdrawals())
            and all(p.status == "CLOSED" for p in client.payments())
            and all(s.status == "ACTIVE" for s in client.sub_clients())
        )

    wait_until(settled, what="the sandbox to settle")


def remote_ids() -> dict[str, set[str]]:
    client = flashfx_client()
    return {spec.name: {r.id for r in spec.fetch_many(client)} for spec in registry.all()}


def mirrored_ids() -> dict[str, set[str]]:
    return {
        name: set(model.objects.values_list("flashfx_id", flat=True))
        for name, model in MODELS.items()
    }


def mirror_state() -> dict[str, dict[str, object]]:
    """Every mirror row's id and updated_at: equal before and after means nothing was written."""
    return {
        name: dict(model.objects.values_list("flashfx_id", "updated_at"))
        for name, model in MODELS.items()
    }
