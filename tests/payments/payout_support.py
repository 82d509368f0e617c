"""What the payout tests share: a recipient and a sender that exist both at the sandbox and in
our mirror, a funded balance, payouts made through the services, and a count of the
createWithdrawal calls the back-office's client made.

A plain module beside the tests (pytest puts this folder on sys.path):
`from payout_support import ...`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.utils import timezone

from mirrors.client import flashfx_client
from mirrors.registry import registry
from parties.models import Recipient, Sender
from payments.models import Payout
from payments.services import payouts

BSB_RECIPIENT = {
    "accountIdType": "BSB",
    "currency": "AUD",
    "bsb": "062000",
    "accountNo": "12345678",
    "firstName": "Mia",
    "lastName": "Ng",
}
COMPANY_SENDER = {
    "companyName": "Demo Company Pty Ltd",
    "email": "accounts@demo.example",
    "address": {"street": "1 Martin Place", "suburb": "Sydney", "country": "AU"},
}


def mirror_recipient(flashfx_id: str) -> Recipient:
    wire = flashfx_client().recipient(flashfx_id)
    registry.get("recipients").apply(wire, observed_at=timezone.now(), source="sync")
    return Recipient.objects.get(flashfx_id=flashfx_id)


def recipient_at_flashfx(**changes: Any) -> Recipient:
    created = flashfx_client().create_recipient({**BSB_RECIPIENT, **changes})
    return mirror_recipient(created.id)


def sender_at_flashfx(**changes: Any) -> Sender:
    created = flashfx_client().create_sender({**COMPANY_SENDER, **changes})
    wire = flashfx_client().sender(created.id)
    registry.get("senders").apply(wire, observed_at=timezone.now(), source="sync")
    return Sender.objects.get(flashfx_id=created.id)


def fund(sandbox, amount: str = "100000.00") -> None:
    """Money on the sandbox's AUD balance (a deposit forced to CONFIRMED)."""
    created = sandbox.receive_deposit(amount)
    response = sandbox.advance("deposits", created["id"], "CONFIRMED")
    assert response.status_code == 200, response.text


def propose(maker, *, recipient, sender, amount="250.00", reference="INV 1042", **kw) -> Payout:
    return payouts.payout_create(
        by=maker,
        recipient=recipient,
        sender=sender,
        amount=Decimal(amount),
        reference=reference,
        reason=kw.pop("reason", "SERVICES"),
        **kw,
    )


def create_calls(caplog) -> list[str]:
    """The createWithdrawal calls the app's client made (its one log line per call)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "flashfx.client" and r.getMessage().startswith("flashfx CreateWithdrawal ")
    ]


def withdrawals_at_flashfx(code: str) -> list:
    """What the sandbox holds under this externalId (read through our own client)."""
    return flashfx_client().withdrawals(externalId=code)
