"""What the international payment tests share: a recipient abroad (an IBAN in EUR) and a
sender that exist both at the sandbox and in our mirror, a funded balance, a live quote, orders
made through the services, and the createPayment calls the back-office's client made.

A plain module beside the tests (pytest puts this folder on sys.path):
`from payment_order_support import ...`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from payout_support import mirror_recipient

from mirrors.client import flashfx_client
from parties.models import Recipient
from payments.models import PaymentOrder, PaymentOrderOutbox
from payments.services import payment_orders

IBAN_RECIPIENT = {
    "accountIdType": "IBAN",
    "currency": "EUR",
    "iban": "DE89370400440532013000",
    "bic": "COBADEFFXXX",
    "companyName": "Muster GmbH",
}


def recipient_abroad(**changes: Any) -> Recipient:
    """An EUR IBAN recipient at the sandbox, mirrored."""
    return mirror_recipient(flashfx_client().create_recipient({**IBAN_RECIPIENT, **changes}).id)


def propose_payment(
    maker,
    *,
    recipient,
    sender=None,
    sub_client=None,
    size="1000.00",
    size_currency="AUD",
    from_currency="AUD",
    reference="INV 2042",
    **kw,
) -> PaymentOrder:
    """An order with a live quote for exactly its amounts, as the new-payment page makes it."""
    amount = {
        "from_currency": from_currency,
        "to_currency": recipient.currency,
        "size": Decimal(size),
        "size_currency": size_currency,
    }
    quote = kw.pop("quote", None) or payment_orders.quote_for(**amount)
    return payment_orders.payment_order_create(
        by=maker,
        sender=sender,
        recipient=recipient,
        sub_client=sub_client,
        reason=kw.pop("reason", "SERVICES"),
        source_of_funds=kw.pop("source_of_funds", "BUSINESS_FUNDS"),
        reference=reference,
        quote=quote,
        **amount,
        **kw,
    )


def approve_payment(order: PaymentOrder, *approvers) -> tuple[PaymentOrder, PaymentOrderOutbox]:
    for approver in approvers:
        order = payment_orders.payment_order_approve(order=order, by=approver)
    order.refresh_from_db()
    assert order.state == PaymentOrder.State.APPROVED, order.state
    return order, PaymentOrderOutbox.objects.get(order=order)


def payment_calls(caplog) -> list[str]:
    """The createPayment calls the app's client made (its one log line per call)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "flashfx.client" and r.getMessage().startswith("flashfx CreatePayment ")
    ]


def payments_at_flashfx(code: str) -> list:
    """What the sandbox holds under this externalId (read through our own client)."""
    return flashfx_client().payments(externalId=code)
