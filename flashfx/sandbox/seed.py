"""Demo data, so that `make run` has something to show; and the reset behind POST /_sandbox/reset."""

from __future__ import annotations

from django.apps import apps
from django.db import transaction

from . import auth, conf, machines, parties, transfers
from .models import ApiUser, Setting

SEEDED_KEY = "seeded"

SENDERS = [
    {
        "firstName": "Lena",
        "lastName": "Fischer",
        "dob": "1991-02-03",
        "email": "lena@example.de",
        "mobile": "+49301234567",
        "externalId": "demo-sender-1",
        "address": {
            "street": "Hauptstr 5",
            "suburb": "Berlin",
            "postcode": "10115",
            "country": "DE",
        },
        "idDoc": {"type": "passport", "docNumber": "C01X00T47", "country": "DE"},
    },
    {
        "companyName": "Acme Trading Pty Ltd",
        "businessNumber": "51824753556",
        "acn": "824753556",
        "email": "accounts@acme.example",
        "externalId": "demo-sender-2",
        "address": {
            "streetNo": "1",
            "street": "Martin Place",
            "suburb": "Sydney",
            "state": "NSW",
            "postcode": "2000",
            "country": "AU",
        },
    },
]
RECIPIENTS = [
    {
        "firstName": "Mia",
        "lastName": "Ng",
        "accountIdType": "BSB",
        "currency": "AUD",
        "bsb": "062000",
        "accountNo": "12345678",
        "externalId": "demo-recipient-1",
        "address": {
            "street": "5 King St",
            "suburb": "Sydney",
            "state": "NSW",
            "postcode": "2000",
            "country": "AU",
        },
    },
    {
        "companyName": "Harbour Supplies Pty Ltd",
        "accountIdType": "PAYID",
        "currency": "AUD",
        "payid": "pay@harbour.example",
        "externalId": "demo-recipient-2",
        "address": {
            "street": "12 Pier St",
            "suburb": "Perth",
            "state": "WA",
            "postcode": "6000",
            "country": "AU",
        },
    },
    {
        "firstName": "Oliver",
        "lastName": "Bennett",
        "accountIdType": "IBAN",
        "currency": "GBP",
        "iban": "GB29NWBK60161331926819",
        "bic": "NWBKGB2L",
        "externalId": "demo-recipient-3",
        "address": {"street": "10 Downing Lane London SW1A 2AA", "country": "GB"},
    },
]
DEPOSITS = [
    # (amount, reference, payer, path)
    ("250000.00", "Opening balance", "Acme Trading Pty Ltd", "CONFIRMED"),
    ("1250.50", "INV-1042", "Harbour Supplies Pty Ltd", "CONFIRMED"),
    ("780.00", "Order 5531", "J Smith", "REVIEWING"),
    ("99.95", "Subscription Nov", "K Lee", None),  # left for the clock to clear
]


def seed_demo() -> bool:
    """Add the demo data once; returns whether anything was added."""
    with transaction.atomic():
        if Setting.objects.filter(key=SEEDED_KEY).exists():
            return False
        Setting.objects.create(key=SEEDED_KEY, value=True)
        for sender in SENDERS:
            parties.sender_create(sender)
        for recipient in RECIPIENTS:
            parties.recipient_create(recipient)
        for amount, reference, payer, status in DEPOSITS:
            deposit = transfers.deposit_receive(
                {
                    "amount": amount,
                    "externalReference": reference,
                    "sender": {"accountName": payer, "bsb": "062000", "accountNo": "11112222"},
                }
            )
            if status == "REVIEWING":
                machines.transition(deposit, "REVIEWING", forced=True)
            elif status == "CONFIRMED":
                machines.transition(deposit, "CONFIRMED", forced=True)
    return True


def reset(*, with_demo_data: bool) -> None:
    """Delete every row of every sandbox table, settings included; keep the API user."""
    with transaction.atomic():
        for model in reversed(list(apps.get_app_config("sandbox").get_models())):  # children first
            if model is not ApiUser:
                model.objects.all().delete()
        conf.reset()
        auth.ensure_api_user()
    if with_demo_data:
        seed_demo()
