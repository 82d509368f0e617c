from __future__ import annotations

from decimal import Decimal


def test_a_cleared_deposit_funds_the_balance(sandbox):
    deposit = sandbox.fund("0.30")
    assert sandbox.balance() == (Decimal("0.30"), Decimal("0.00"))
    received = sandbox.receiver.wait_for_events(
        deposit["id"], ["deposit_initiated", "deposit_cleared"]
    )
    assert received[1].json["clearedAt"].endswith("Z")
