"""What follows FlashFX's news about deposits, whatever brought it (sync, webhook, reply).

DEPOSITS.on_change (payments/mirrors.py) calls `deposits_changed` in the transaction that
applied the news: a new deposit (marked third-party or not before it was written,
DEPOSITS.prepare_new) is matched to what it pays for; a status move carries our refund
forward, and a deposit FlashFX cancels or refunds in full gives its expected payment back.
Both commit with the mirror row or not at all.
"""

from __future__ import annotations

from typing import cast

from mirrors.apply import Change

from ..models import Deposit
from . import matching, refunds


def deposits_changed(changes: list[Change]) -> None:
    arrived = [cast(Deposit, c.obj) for c in changes if c.created]  # the deposits mirror
    if arrived:
        matching.deposits_arrived(deposits=arrived)
    moved = [c for c in changes if c.status_moved and not c.created]
    if moved:
        refunds.deposits_moved(changes=moved)
        matching.deposits_moved(changes=moved)
