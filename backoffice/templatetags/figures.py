"""`{{ amount|money }}`: a Decimal amount as staff read it, "1,234.50" (exact, never a float)."""

from __future__ import annotations

from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def money(amount: Decimal | None) -> str:
    return "—" if amount is None else f"{amount:,.2f}"


@register.filter
def money_in(amount: Decimal | None, currency: str) -> str:
    """`{{ payout.amount|money_in:payout.currency }}`: "AUD 1,234.50", the one way every page
    writes an amount with its currency (the currency first, thousands separated)."""
    return "—" if amount is None else f"{currency} {money(amount)}"
