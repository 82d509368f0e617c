"""Payouts and international payments export the rows their lists show under the same filters,
in the same order, with the recipient's account masked for approvers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from export_support import csv_rows, export, member
from staff import make_staff

from parties.models import Recipient
from payments.models import PaymentOrder, Payout, Withdrawal

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)


@pytest.fixture
def recipient():
    return Recipient.objects.create(
        flashfx_id="RECX",
        display_name="Mia Ng",
        account_id_type="BSB",
        currency="AUD",
        bsb="062000",
        account_no="12345678",
    )


def payouts(recipient) -> list[Payout]:
    maker = make_staff("operator", "maker")
    made = []
    for n, state in enumerate(["awaiting_approval", "declined", "submitted", "submitted"]):
        withdrawal = None
        if state == "submitted":
            withdrawal = Withdrawal.objects.create(
                flashfx_id=f"WD{n}",
                flashfx_status="CONFIRMED" if n == 2 else "PENDING",
                currency="AUD",
                amount=Decimal("10.00"),
            )
        made.append(
            Payout.objects.create(
                recipient=recipient,
                maker=maker,
                amount=Decimal(f"{n}00.25"),
                reference=f"-REF{n}",
                reason="BUSINESS",
                state=state,
                withdrawal=withdrawal,
                created_at=T0 + timedelta(minutes=n),
            )
        )
    return made


@pytest.mark.parametrize(
    "filters", ["", "state=declined", "status=none", "status=CONFIRMED", "state=submitted"]
)
def test_a_payout_export_holds_the_rows_the_list_shows(recipient, filters):
    payouts(recipient)
    client = member("approver", "abe")
    shown = [p.code for p in client.get(f"/payouts/?{filters}").context["page"].rows]
    rows = csv_rows(export(client, "payouts", filters=filters, columns=["code"]))
    assert [r[0] for r in rows[1:]] == shown and shown


def test_a_payout_export_writes_amounts_escapes_references_and_masks_accounts(recipient):
    payouts(recipient)
    rows = csv_rows(
        export(
            member("approver", "abe"),
            "payouts",
            filters="state=declined",
            columns=["amount", "currency", "reference", "recipient_account", "status", "started"],
        )
    )
    assert rows == [
        ["Amount", "Currency", "Reference", "Recipient account", "FlashFX status",
         "Started (Australia/Sydney)"],
        ["100.25", "AUD", "'-REF1", "*****678", "", "2026-11-02 12:01:00"],
    ]  # fmt: skip


def test_a_payment_export_holds_the_rows_the_list_shows(recipient):
    maker = get_user_model().objects.create_user("pm")
    for n, state in enumerate(["awaiting_approval", "declined", "declined"]):
        PaymentOrder.objects.create(
            state=state,
            recipient=recipient,
            from_currency="AUD",
            to_currency="USD",
            size=Decimal("1000.00"),
            size_currency="AUD",
            reason="BUSINESS",
            source_of_funds="BUSINESS_FUNDS",
            reference=f"PAY {n}",
            quoted_rate=Decimal("0.65432100"),
            quoted_fee=Decimal("-5.00"),
            quoted_from_amount=Decimal("1000.00"),
            quoted_to_amount=Decimal("654.32"),
            quoted_at=T0,
            quote_expires_at=T0 + timedelta(minutes=1),
            created_by=maker,
            created_at=T0 + timedelta(minutes=n),
        )
    client = member("operator", "olivia")
    shown = [o.code for o in client.get("/payments/?state=declined").context["page"].rows]
    rows = csv_rows(
        export(
            client,
            "payments",
            filters="state=declined",
            columns=["code", "rate", "fee", "to_amount", "recipient_account"],
        )
    )
    assert [r[0] for r in rows[1:]] == shown and len(shown) == 2
    assert rows[1][1:] == ["0.65432100", "-5.00", "654.32", "12345678"]  # operators see it
