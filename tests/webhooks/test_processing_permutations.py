"""Webhooks arrive in any order (a retry does not hold back later events, docs/flashfx.md §5.29): every
order of a withdrawal's real events ends in the same mirror row, which is FlashFX's."""

from __future__ import annotations

from decimal import Decimal
from itertools import permutations
from math import factorial

import pytest
from django.utils import timezone
from processing_support import (
    BSB_RECIPIENT,
    assert_mirror_matches,
    process,
    quick_logins,
    row_state,
    sandbox_client,
    store,
)

from payments.mirrors import WITHDRAWALS
from payments.models import Withdrawal
from webhooks.models import InboundEvent

pytestmark = pytest.mark.django_db

# The UAT keyword paths (docs/flashfx.md §3.3.6), as the sandbox runs them by itself.
PATHS = {
    "FAIL_ACC": [
        "withdrawal_initiated",
        "withdrawal_pending",
        "withdrawal_completed",
        "withdrawal_failed",
        "withdrawal_refunded",
    ],
    "PUSH_AML": [
        "withdrawal_initiated",
        "withdrawal_reviewing",
        "withdrawal_pending",
        "withdrawal_completed",
    ],
    "FAIL_AML": ["withdrawal_initiated", "withdrawal_reviewing", "withdrawal_cancelled"],
}
FINAL = {"FAIL_ACC": "REFUNDED", "PUSH_AML": "CONFIRMED", "FAIL_AML": "CANCELLED"}


@pytest.mark.parametrize("keyword", list(PATHS))
def test_every_order_of_a_withdrawals_events_converges_to_flashfxs_state(sandbox, keyword):
    # Steps a little apart, so that no two events share eventScheduledAt's millisecond.
    sandbox.configure(step_delay_seconds=0.05)
    quick_logins(sandbox)
    sandbox.fund("500.00")
    client = sandbox_client(sandbox)
    seen_at = timezone.now()
    # The reply to our own createWithdrawal: how the mirror first learns of a payout.
    reply = client.create_withdrawal(
        {
            "amount": Decimal("25.5"),
            "currency": "AUD",
            "externalReference": f"payout {keyword} 1",
            "recipient": BSB_RECIPIENT,
        }
    )
    received = sandbox.receiver.wait_for_events(reply.id, PATHS[keyword])
    final = client.withdrawal(reply.id)
    client.close()
    assert final.status == FINAL[keyword]

    states = {}
    for order in permutations(received):
        Withdrawal.objects.all().delete()  # a fresh mirror for every order
        InboundEvent.objects.all().delete()
        WITHDRAWALS.apply(reply, observed_at=seen_at)
        process([store(r) for r in order])
        state = row_state("withdrawal", reply.id)
        state.pop("updated_at")  # when we wrote it, not what we hold
        states[tuple(r.json["event"] for r in order)] = state
        assert set(InboundEvent.objects.values_list("status", flat=True)) == {"processed"}

    assert len(states) == factorial(len(PATHS[keyword]))
    as_delivered = states[tuple(PATHS[keyword])]
    differing = [order for order, state in states.items() if state != as_delivered]
    assert differing == [], f"{len(differing)} orders end elsewhere, e.g. {differing[0]}"
    assert_mirror_matches("withdrawal", final)  # the last order's row; all are equal
