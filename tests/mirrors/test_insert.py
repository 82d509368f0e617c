"""New mirror rows in bulk (mirrors/insert.py): what create_many writes is what bulk_create
writes, on SQLite and on PostgreSQL; and lookups by FlashFX id reach the unique index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from mirrors import insert
from mirrors.insert import create_many, insert_values
from mirrors.models import StatusChange
from parties.models import SubClient
from payments.models import Deposit

pytestmark = pytest.mark.django_db

SYDNEY = timezone(timedelta(hours=10))
T0 = datetime(2026, 5, 1, 2, 3, 4, tzinfo=UTC)


def deposit(flashfx_id: str, sub_client: SubClient | None, **overrides) -> Deposit:
    fields = {
        "flashfx_id": flashfx_id,
        "flashfx_status": "CONFIRMED",
        "external_id": "ext-1",
        "raw": {"id": "65f0c0ffee", "amount": "1234.50", "sender": {"accountName": "Zoë Ng"}},
        "remote_changed_at": datetime(2026, 5, 1, 2, 3, 4, 567891, tzinfo=UTC),
        "anomaly": "",
        "amount": Decimal("1234.50"),
        "currency": "AUD",
        "total_fee": None,
        "external_reference": "INV-1042",
        "sub_client": sub_client,
        "sub_client_flashfx_id": sub_client.flashfx_id if sub_client else "",
        "sender_account_name": "Zoë Ng",
        "sender_bsb": "062000",
        "sender_account_no": "12345678",
        # another zone than UTC and than the connection's: stored as the same instant
        "flashfx_created_at": datetime(2026, 5, 1, 12, 0, 0, tzinfo=SYDNEY),
        "cleared_at": None,
        "refund_amount": Decimal("0.05"),
        "third_party": True,
        **overrides,
    }
    return Deposit(**fields)


def stored(flashfx_id: str) -> dict:
    """The row as the database holds it, column by column, without Django's conversions."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT * FROM {Deposit._meta.db_table} WHERE flashfx_id = %s",  # noqa: S608 - test
            [flashfx_id],
        )
        names = [c[0] for c in cursor.description]
        (row,) = cursor.fetchall()
    return dict(zip(names, row, strict=True))


def test_create_many_writes_what_bulk_create_writes():
    sub_client = SubClient.objects.create(flashfx_id="sc01", full_name="Acme Pty Ltd")
    Deposit.objects.bulk_create([deposit("by-django", sub_client)])
    create_many(Deposit, [deposit("by-us", sub_client)], key="flashfx_id")

    ours, djangos = stored("by-us"), stored("by-django")
    for column in ("id", "flashfx_id", "created_at", "updated_at"):  # ids and now() differ
        ours.pop(column), djangos.pop(column)
    if connection.vendor == "postgresql":
        ours.pop("raw"), djangos.pop("raw")  # jsonb: compared below, as values
    assert ours == djangos
    assert (
        Deposit.objects.get(flashfx_id="by-us").raw
        == Deposit.objects.get(flashfx_id="by-django").raw
    )


def test_create_many_gives_each_instance_its_own_key():
    rows = [deposit(f"dep{n:03d}", None, amount=Decimal(n)) for n in range(1, 8)]
    create_many(Deposit, rows, key="flashfx_id")

    held = dict(Deposit.objects.values_list("pk", "flashfx_id"))
    assert {row.pk: row.flashfx_id for row in rows} == held
    assert all(not row._state.adding for row in rows)
    assert Deposit.objects.get(pk=rows[3].pk).amount == Decimal("4.00")


def test_more_rows_than_one_statement_takes_are_all_written(monkeypatch):
    monkeypatch.setattr(insert, "MAX_ROWS_PER_STATEMENT", 3)
    rows = [deposit(f"many{n:03d}", None) for n in range(11)]
    create_many(Deposit, rows, key="flashfx_id")
    insert_values(
        StatusChange,
        (
            "entity",
            "flashfx_id",
            "old_status",
            "new_status",
            "observed_at",
            "recorded_at",
            "source",
        ),
        [("payments.deposit", r.flashfx_id, "", "CONFIRMED", T0, T0, "sync") for r in rows],
    )

    assert Deposit.objects.count() == 11
    assert sorted(StatusChange.objects.values_list("flashfx_id", flat=True)) == sorted(
        r.flashfx_id for r in rows
    )


def test_a_row_that_exists_already_fails_the_whole_batch_as_an_integrity_error():
    create_many(Deposit, [deposit("taken", None)], key="flashfx_id")

    with pytest.raises(IntegrityError), transaction.atomic():
        create_many(Deposit, [deposit("fresh", None), deposit("taken", None)], key="flashfx_id")

    assert list(Deposit.objects.values_list("flashfx_id", flat=True)) == ["taken"]


def test_instances_that_have_keys_or_share_one_are_refused():
    with pytest.raises(ValueError, match="primary key"):
        create_many(Deposit, [deposit("x", None, pk=5)], key="flashfx_id")
    with pytest.raises(ValueError, match="share"):
        create_many(Deposit, [deposit("twice", None), deposit("twice", None)], key="flashfx_id")
    assert not Deposit.objects.exists()


@pytest.mark.parametrize("how", ["one", "many"])
def test_lookups_by_flashfx_id_can_use_the_unique_index(how):
    """The index leaves out rows with no FlashFX id; a query must say so to be able to use it
    (mirrors/base.py MirrorQuerySet)."""
    rows = (
        Deposit.objects.flashfx_id("abc")
        if how == "one"
        else Deposit.objects.flashfx_ids(f"id{n}" for n in range(1000))
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")  # an empty table: ask what it can
            cursor.execute("SET LOCAL enable_indexscan = on")
    plan = rows.order_by().explain()

    assert "flashfx_id_uniq" in plan, plan


def test_a_batch_that_fails_leaves_its_instances_without_keys():
    create_many(Deposit, [deposit("first", None)], key="flashfx_id")
    rows = [deposit("second", None), deposit("first", None)]

    with pytest.raises(IntegrityError), transaction.atomic():
        create_many(Deposit, rows, key="flashfx_id")

    assert [row.pk for row in rows] == [None, None]
