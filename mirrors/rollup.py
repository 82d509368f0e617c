"""The money roll-up: what the mirrored movements add up to per source, currency and UTC hour
(MoneyRollup), for the dashboard's charts (issue 13: the same cost at 1k and 1M rows).

Each mirror says what a row moves (`Mirror.money_moved`). The apply rule, which is the only
writer of mirror rows, calls `follow` with a row as it was and as it is now, in the transaction
that writes it: the difference goes into the hours it touches, by an additive upsert, so two
transactions adding to the same hour both count. `rebuild` recomputes everything from the rows
(`manage.py rebuild_money_rollup`, and after rows written outside the apply rule), and
`differences` says where the roll-up and the rows disagree (tests, and a check by hand).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.apps import apps
from django.db import connection, transaction

from .base import Mirror
from .models import MoneyRollup

Key = tuple[str, str, datetime]  # (source, currency, UTC hour)
ZERO = Decimal("0.00")


def hour_of(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def contributions(rows: Iterable[Mirror]) -> dict[Key, Decimal]:
    totals: dict[Key, Decimal] = defaultdict(Decimal)
    for row in rows:
        for source, currency, at, amount in row.money_moved():
            if amount:
                totals[(source, currency, hour_of(at))] += amount
    return totals


def snapshot(row: Mirror) -> list[tuple[str, str, datetime, Decimal]]:
    """What a row moves as it is now (taken before the apply rule changes it)."""
    return row.money_moved()


def follow(before: Iterable[tuple[str, str, datetime, Decimal]], after: Mirror | None) -> None:
    """Add the difference between what a row moved (`before`, from `snapshot`) and what it
    moves now (`after`) to the roll-up."""
    follow_many([(before, after)])


def follow_many(pairs: Iterable[tuple[Iterable, Mirror | None]]) -> None:
    deltas: dict[Key, Decimal] = defaultdict(Decimal)
    for before, after in pairs:
        for source, currency, at, amount in before:
            deltas[(source, currency, hour_of(at))] -= amount
        if after is not None:
            for source, currency, at, amount in after.money_moved():
                deltas[(source, currency, hour_of(at))] += amount
    add({k: v for k, v in deltas.items() if v})


def add(deltas: dict[Key, Decimal]) -> None:
    """Add each amount to its hour by an additive upsert (PostgreSQL and SQLite both take
    ON CONFLICT ... DO UPDATE), so concurrent writers never lose each other's sums."""
    if not deltas:
        return
    table = MoneyRollup._meta.db_table
    field = MoneyRollup._meta.get_field("hour")
    money = MoneyRollup._meta.get_field("amount")
    insert = f"INSERT INTO {table} (source, currency, hour, amount) "  # noqa: S608 - our own table
    upsert = f" ON CONFLICT (hour, source, currency) DO UPDATE SET amount = {table}.amount + excluded.amount"
    params = [
        (
            source,
            currency,
            field.get_db_prep_save(hour, connection),
            money.get_db_prep_save(amount, connection),
        )
        for (source, currency, hour), amount in sorted(deltas.items())  # one lock order
    ]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # One statement for the whole batch, its rows as four arrays: a sync window
            # touches a hundred hours, and one upsert each costs a round of the protocol.
            cursor.execute(
                insert  # noqa: S608 - our own table; every value is bound
                + "SELECT * FROM unnest(%s::varchar[], %s::varchar[], %s::timestamptz[], %s::numeric[])"
                + upsert,
                [list(column) for column in zip(*params, strict=True)],
            )
        else:
            cursor.executemany(insert + "VALUES (%s, %s, %s, %s)" + upsert, params)


def _models() -> list[type[Mirror]]:
    """Every mirror that moves money (the others add nothing)."""
    return [
        m
        for m in apps.get_models()
        if issubclass(m, Mirror) and m.money_moved is not Mirror.money_moved
    ]


def recomputed() -> dict[Key, Decimal]:
    """The roll-up as the rows say it should be."""
    totals: dict[Key, Decimal] = defaultdict(Decimal)
    for model in _models():
        for key, amount in contributions(model.objects.iterator(chunk_size=2000)).items():
            totals[key] += amount
    return {k: v for k, v in totals.items() if v}


def stored() -> dict[Key, Decimal]:
    return {(r.source, r.currency, r.hour): r.amount for r in MoneyRollup.objects.all() if r.amount}


def differences() -> dict[Key, tuple[Decimal, Decimal]]:
    """Where the roll-up disagrees with the rows: key -> (stored, recomputed)."""
    have, want = stored(), recomputed()
    return {
        k: (have.get(k, ZERO), want.get(k, ZERO))
        for k in have.keys() | want.keys()
        if have.get(k, ZERO) != want.get(k, ZERO)
    }


def rebuild() -> int:
    """Recompute the whole roll-up from the rows, in one transaction; how many hours it holds."""
    with transaction.atomic():
        MoneyRollup.objects.all().delete()
        totals = recomputed()
        MoneyRollup.objects.bulk_create(
            [
                MoneyRollup(source=s, currency=c, hour=h, amount=a)
                for (s, c, h), a in sorted(totals.items())
            ],
            batch_size=2000,
        )
    return len(totals)
