"""Deposits for the queue tests: rows as the mirror holds them, without the sandbox."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from payments.models import Deposit

_seq = itertools.count(1)
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def make_deposit(**fields) -> Deposit:
    n = next(_seq)
    values = {
        "flashfx_id": f"DEP{n:06d}",
        "flashfx_status": "CONFIRMED",
        "currency": "AUD",
        "amount": Decimal("100.00"),
        "sender_account_name": f"Payer {n}",
        "sender_bsb": "062000",
        "sender_account_no": f"{10000000 + n}",
        "external_reference": f"REF{n}",
        "flashfx_created_at": T0 + timedelta(minutes=n),
    }
    values.update(fields)
    return Deposit.objects.create(**values)
