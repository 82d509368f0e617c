"""What the refund tests share: deposits that exist both in the sandbox and in our mirror, the
back-office's own client pointed at the sandbox, and a count of refundDeposit calls.

A plain module beside the tests (pytest puts this folder on sys.path):
`from refund_support import ...`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from django.utils import timezone
from harness import close_app_client

from mirrors.client import flashfx_client
from mirrors.registry import registry
from payments.models import Deposit

SENDER = {"accountName": "Pat Payer", "bsb": "062000", "accountNo": "11112222"}
N = 0


@contextmanager
def app_at(sandbox, settings) -> Iterator[Any]:
    """The back-office's own client talks to the sandbox; nothing moves there by itself
    (forced transitions only), and logins need no pause."""
    sandbox.configure(step_delay_seconds=3600, login_interval_seconds=0)
    close_app_client()
    settings.FLASHFX_API_URL = sandbox.url
    try:
        yield sandbox
    finally:
        close_app_client()


def mirror(flashfx_id: str, *, source: str = "sync") -> Deposit:
    """FlashFX's current version of the deposit into our mirror, as sync would."""
    wire = flashfx_client().deposit(flashfx_id)
    registry.get("deposits").apply(wire, observed_at=timezone.now(), source=source)
    return Deposit.objects.get(flashfx_id=flashfx_id)


def confirmed_deposit(sandbox, amount: str = "250.00", **fields: Any) -> Deposit:
    """A deposit FlashFX has CONFIRMED, mirrored here."""
    created = sandbox.receive_deposit(amount, sender=SENDER, **fields)
    response = sandbox.advance("deposits", created["id"], "CONFIRMED")
    assert response.status_code == 200, response.text
    return mirror(created["id"])


def local_deposit(status: str = "CONFIRMED", amount: str = "250.00", **fields: Any) -> Deposit:
    """A deposit in our mirror only (for refusals decided before any call)."""
    global N
    N += 1
    return Deposit.objects.create(
        flashfx_id=f"{N:024x}",
        flashfx_status=status,
        currency=fields.pop("currency", "AUD"),
        amount=Decimal(amount),
        sender_account_name="Pat Payer",
        sender_bsb="062000",
        sender_account_no="11112222",
        flashfx_created_at=timezone.now(),
        **fields,
    )


def refund_calls(caplog) -> list[str]:
    """The refundDeposit calls the app's client made (its one log line per call)."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "flashfx.client" and r.getMessage().startswith("flashfx RefundDeposit ")
    ]


def log_calls(caplog) -> None:
    caplog.set_level(logging.INFO, logger="flashfx.client")
