"""A day's statement from FlashFX beside our mirror (README: Mirrors, sync and reconciliation).

FlashFX's `statement` gives one day of ledger lines from a moment (docs/flashfx.md §3.1): we ask
from midnight of the day in the member's zone, so the lines cover that zone's day (24 hours:
a daylight-saving day of 23 or 25 hours is FlashFX's 24 from that midnight). Each line is put
beside the movement our mirror holds for it, found by the line's transaction id and type through
the mirrors' `statement_lines` (each app declares what its rows put on the statement):

- matched: the mirror implies the same line, for the same signed amount;
- amounts differ: the mirror implies that line for another amount;
- only at FlashFX: no mirrored row implies it (a movement we have not seen, or a status the
  mirror has not caught up with);
- only in our mirror: a line the mirror dates inside that window that FlashFX does not list.

The result is stored (StatementLine), replacing the same day and currency's earlier copy, so the
page, its export and an auditor read what FlashFX said and when it was asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from flashfx.client import FlashFXClient

from .models import StatementLine
from .registry import ImpliedLine, MirrorSpec, registry

Match = StatementLine.Match


def day_window(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """The moments FlashFX's statement of `day` covers: midnight in `zone`, then 24 hours."""
    start = datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
    return start, start + timedelta(days=1)


@dataclass(frozen=True)
class Implied:
    spec: MirrorSpec
    flashfx_id: str
    line: ImpliedLine


def _implied_by_ids(ids: set[str]) -> dict[tuple[str, str], Implied]:
    """(transaction id, line type) -> the line the mirrored row with that FlashFX id implies."""
    found: dict[tuple[str, str], Implied] = {}
    for spec in _specs():
        for row in spec.model.objects.flashfx_ids(ids):
            for line in spec.statement_lines(row):  # type: ignore[misc]
                found[(row.flashfx_id, line.type)] = Implied(spec, row.flashfx_id, line)
    return found


def _implied_in_window(currency: str, start: datetime, end: datetime) -> list[Implied]:
    """Every line the mirror dates inside [start, end) in `currency`."""
    implied = []
    for spec in _specs():
        dated = Q()
        for column in spec.statement_dated_by:
            dated |= Q(**{f"{column}__gte": start, f"{column}__lt": end})
        for row in spec.model.objects.filter(dated).order_by("pk"):
            for line in spec.statement_lines(row):  # type: ignore[misc]
                if line.currency == currency and line.at is not None and start <= line.at < end:
                    implied.append(Implied(spec, row.flashfx_id, line))
    return implied


def _specs() -> list[MirrorSpec]:
    return [s for s in registry.all() if s.statement_lines is not None and s.statement_dated_by]


def statement_beside_mirror(
    *, client: FlashFXClient, day: date, currency: str, zone: tzinfo | None = None
) -> list[StatementLine]:
    """Ask FlashFX for `day`'s statement in `currency`, put each line beside the mirror, store
    the result (replacing that day's earlier copy) and return it, in FlashFX's order then the
    mirror's own lines."""
    start, end = day_window(day, zone or timezone.get_current_timezone())
    fetched_at = timezone.now()
    lines = client.statement(start, currency)
    implied = _implied_by_ids({line.transaction_id for line in lines if line.transaction_id})
    rows: list[StatementLine] = []
    listed: set[tuple[str, str]] = set()
    for line in lines:
        key = (line.transaction_id or "", line.type or "")
        listed.add(key)
        signed = line.credit - line.debit
        mine = implied.get(key)
        if mine is None:
            match, entity, mirror_amount = Match.ONLY_FLASHFX, "", None
        else:
            entity, mirror_amount = mine.spec.name, mine.line.amount
            match = Match.MATCHED if mirror_amount == signed else Match.DIFFERS
        rows.append(
            StatementLine(
                line_id=line.id or "",
                created_at=line.created_at,
                type=line.type or "",
                description=(line.description or "")[:300],
                transaction_id=line.transaction_id or "",
                debit=line.debit,
                credit=line.credit,
                balance=line.balance,
                entity=entity,
                mirror_amount=mirror_amount,
                match=match,
            )
        )
    for mine in _implied_in_window(currency, start, end):
        if (mine.flashfx_id, mine.line.type) in listed:
            continue
        rows.append(
            StatementLine(
                created_at=mine.line.at,
                type=mine.line.type,
                transaction_id=mine.flashfx_id,
                entity=mine.spec.name,
                mirror_amount=mine.line.amount,
                match=Match.ONLY_MIRROR,
            )
        )
    for position, row in enumerate(rows):
        row.day, row.currency, row.position, row.fetched_at = day, currency, position, fetched_at
    with transaction.atomic():
        StatementLine.objects.filter(day=day, currency=currency).delete()
        return StatementLine.objects.bulk_create(rows)


@dataclass
class StatementTotals:
    lines: int = 0
    credit: Decimal = Decimal("0.00")
    debit: Decimal = Decimal("0.00")
    mirror: Decimal = Decimal("0.00")
    by_match: dict[str, int] = field(default_factory=dict)

    @property
    def net(self) -> Decimal:
        return self.credit - self.debit

    @property
    def difference(self) -> Decimal:
        """FlashFX's net movement less the mirror's, over the same lines."""
        return self.net - self.mirror


def statement_totals(rows: list[StatementLine]) -> StatementTotals:
    totals = StatementTotals()
    for row in rows:
        totals.lines += 1
        totals.credit += row.credit or 0
        totals.debit += row.debit or 0
        totals.mirror += row.mirror_amount or 0
        totals.by_match[row.match] = totals.by_match.get(row.match, 0) + 1
    return totals
