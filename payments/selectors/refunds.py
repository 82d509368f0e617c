"""Refunds as other pages show them: the queue shows each deposit's latest rejection, with
FlashFX's code and message when it was refused or failed (payments/views/deposits.py)."""

from __future__ import annotations

from collections.abc import Iterable

from ..models import DepositRefund

PROBLEMS = (DepositRefund.State.REFUSED, DepositRefund.State.FAILED, DepositRefund.State.UNKNOWN)


def refunds_latest(*, deposit_ids: Iterable[int]) -> dict[int, DepositRefund]:
    """The newest refund of each of these deposits (one query; deposits with none are absent).

    `refund.state in PROBLEMS` marks a row to flag; `error_code` and `error_message` are
    FlashFX's words (or ours when it never went out)."""
    latest: dict[int, DepositRefund] = {}
    rows = DepositRefund.objects.filter(deposit_id__in=list(deposit_ids)).order_by(
        "deposit_id", "-requested_at", "-id"
    )
    for refund in rows:
        latest.setdefault(refund.deposit_id, refund)
    return latest
