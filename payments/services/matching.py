"""Matching deposits to expected payments (being built: issue 10)."""

from __future__ import annotations


def deposits_arrived(*, deposits: list) -> None:
    """Third-party check and matching for newly mirrored deposits (being built)."""
