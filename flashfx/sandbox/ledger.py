"""Balances per currency and the statement lines behind them (docs/flashfx.md §3.1, §5.22).

Callers hold a transaction; SQLite's IMMEDIATE mode serialises writers, so read-check-write is safe.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction

from .errors import BusinessFailure
from .models import Balance, LedgerEntry


def _balance(currency: str) -> Balance:
    balance, _ = Balance.objects.select_for_update().get_or_create(currency=currency)
    return balance


def add_pending(currency: str, amount: Decimal) -> None:
    """Money seen but not cleared (an INITIALISED or REVIEWING deposit)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ledger moves happen inside the transaction that causes them")
    balance = _balance(currency)
    balance.pending += amount
    balance.save(update_fields=["pending"])


def credit(
    currency: str, amount: Decimal, *, kind: str, description: str, transaction_id: str
) -> None:
    _move(currency, amount, kind=kind, description=description, transaction_id=transaction_id)


def debit(
    currency: str, amount: Decimal, *, kind: str, description: str, transaction_id: str
) -> None:
    """Take cleared money, or refuse with INSUFFICIENT_FUNDS (docs/flashfx.md §5.16) and change nothing."""
    _move(currency, -amount, kind=kind, description=description, transaction_id=transaction_id)


def require_funds(currency: str, amount: Decimal) -> None:
    cleared = Balance.objects.filter(currency=currency).values_list("cleared", flat=True).first()
    if (cleared or Decimal(0)) < amount:
        raise BusinessFailure(
            "INSUFFICIENT_FUNDS",
            f"Insufficient {currency} balance: {cleared or Decimal('0.00')} available, {amount} needed",
        )


def _move(
    currency: str, signed: Decimal, *, kind: str, description: str, transaction_id: str
) -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("ledger moves happen inside the transaction that causes them")
    if signed == 0:
        return
    if signed < 0:
        require_funds(currency, -signed)
    balance = _balance(currency)
    balance.cleared += signed
    balance.save(update_fields=["cleared"])
    LedgerEntry.objects.create(
        currency=currency,
        kind=kind,
        description=description,
        transaction_id=transaction_id,
        debit=-signed if signed < 0 else Decimal("0.00"),
        credit=signed if signed > 0 else Decimal("0.00"),
        balance_after=balance.cleared,
    )


def balances(currencies: list[str] | None) -> list[Balance]:
    queryset = Balance.objects.order_by("currency")
    if currencies is not None:
        queryset = queryset.filter(currency__in=currencies)
    return list(queryset)


def statement(currency: str, start: datetime, end: datetime) -> list[LedgerEntry]:
    return list(
        LedgerEntry.objects.filter(currency=currency, created_at__gte=start, created_at__lt=end)
    )
