"""Rejecting (refunding) deposits (being built: issue 10)."""

from __future__ import annotations


def deposits_moved(*, changes: list) -> None:
    """Carry our refunds forward when FlashFX moves a deposit (being built)."""
