"""The money roll-up (mirrors/rollup.py) follows every change the apply rule makes, one at a time
or a sync window at a time, so that the dashboard's money charts read hours, not rows."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from staff import make_staff

from backoffice import dashboard
from flashfx import types
from mirrors import rollup
from mirrors.models import MoneyRollup
from payments.mirrors import DEPOSITS, WITHDRAWALS
from payments.models import Deposit, Withdrawal

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 5, 1, 2, 3, 4, tzinfo=UTC)
STATUSES = ["INITIALISED", "REVIEWING", "CONFIRMED", "REFUNDING", "REFUNDED", "CANCELLED"]
PAYOUT_STATUSES = ["INITIALISED", "PENDING", "CONFIRMED", "FAILED", "REFUNDED"]


def deposit_wire(n: int, status: str, amount: str, fee: str | None, hour: int) -> types.Deposit:
    return types.Deposit.from_wire(
        {
            "id": f"{n:024x}",
            "status": status,
            "amount": Decimal(amount),
            "currency": "AUD",
            "totalFee": None if fee is None else Decimal(fee),
            "createdAt": f"2026-05-0{1 + hour // 24}T{hour % 24:02d}:10:00.000Z",
            "refundAmount": Decimal(amount) if status in ("REFUNDING", "REFUNDED") else None,
            "refundedAt": "2026-05-04T09:30:00.000Z" if status == "REFUNDED" else None,
        }
    )


def withdrawal_wire(n: int, status: str, amount: str) -> types.Withdrawal:
    return types.Withdrawal.from_wire(
        {
            "id": f"{n + 1000:024x}",
            "status": status,
            "amount": Decimal(amount),
            "currency": "AUD",
            "totalFee": Decimal("1.10"),
            "createdAt": "2026-05-02T23:59:00.000Z",
            "recipient": {"id": None, "displayName": "Mia Ng", "bsb": "062000", "accountNo": "1"},
        }
    )


amounts = st.decimals(min_value="0.01", max_value="99999.99", places=2).map(str)
one_change = st.one_of(
    st.tuples(
        st.just("deposit"),
        st.integers(0, 3),
        st.sampled_from(STATUSES),
        amounts,
        st.one_of(st.none(), st.just("0.50")),
        st.integers(0, 71),
    ),
    st.tuples(st.just("payout"), st.integers(0, 2), st.sampled_from(PAYOUT_STATUSES), amounts),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(changes=st.lists(one_change, min_size=1, max_size=12), in_windows=st.booleans())
def test_whatever_the_apply_rule_does_the_rollup_adds_up_to_the_rows(changes, in_windows):
    """Creations, status moves (refused or not), new amounts and fees, refunds; applied one by
    one (webhooks, replies) or as sync windows: the roll-up equals the sums of the rows."""
    Deposit.objects.all().delete()  # each example starts empty
    Withdrawal.objects.all().delete()
    MoneyRollup.objects.all().delete()
    at = T0
    for change in changes:
        at += timedelta(seconds=1)  # each version newer than the last
        if change[0] == "deposit":
            _, n, status, amount, fee, hour = change
            wire = deposit_wire(n, status, amount, fee, hour)
            if in_windows:
                DEPOSITS.apply_many([wire], observed_at=at)
            else:
                DEPOSITS.apply(wire, observed_at=at, authoritative=n == 3)
        else:
            _, n, status, amount = change
            wire = withdrawal_wire(n, status, amount)
            if in_windows:
                WITHDRAWALS.apply_many([wire], observed_at=at)
            else:
                WITHDRAWALS.apply(wire, observed_at=at)
    assert rollup.differences() == {}


def test_a_deposit_counts_on_its_hour_and_its_refund_on_the_refunds_hour():
    DEPOSITS.apply(deposit_wire(1, "CONFIRMED", "100.00", "0.50", 5), observed_at=T0)
    hour = datetime(2026, 5, 1, 5, tzinfo=UTC)
    assert rollup.stored() == {
        ("deposits", "AUD", hour): Decimal("100.00"),
        ("fees", "AUD", hour): Decimal("0.50"),
    }
    DEPOSITS.apply(
        deposit_wire(1, "REFUNDED", "100.00", "0.50", 5), observed_at=T0 + timedelta(seconds=1)
    )
    assert rollup.stored()[("refunds", "AUD", datetime(2026, 5, 4, 9, tzinfo=UTC))] == Decimal(
        "100.00"
    )
    DEPOSITS.apply(  # FlashFX's own correction: cancelled after all (authoritative)
        deposit_wire(1, "CANCELLED", "100.00", "0.50", 5),
        observed_at=T0 + timedelta(seconds=2),
        authoritative=True,
    )
    assert rollup.stored() == {}  # nothing moved: every hour back to zero


def test_rebuild_and_check_from_the_command_line():
    DEPOSITS.apply(deposit_wire(1, "CONFIRMED", "100.00", None, 5), observed_at=T0)
    Deposit.objects.update(amount=Decimal("90.00"))  # written outside the apply rule
    out = StringIO()
    with pytest.raises(CommandError, match="1 hours differ"):
        call_command("rebuild_money_rollup", "--check", stdout=out)
    assert "deposits AUD: 100.00 != 90.00" in out.getvalue()
    call_command("rebuild_money_rollup", stdout=StringIO())
    call_command("rebuild_money_rollup", "--check", stdout=out)
    assert "agrees with the rows" in out.getvalue()


def test_the_dashboard_reads_the_same_figures_from_the_rollup_as_from_the_rows(monkeypatch):
    now = datetime(2026, 5, 6, 3, tzinfo=UTC)
    for n, hour in enumerate((0, 13, 14, 37, 90)):
        DEPOSITS.apply(deposit_wire(n, "CONFIRMED", f"{n + 1}0.25", "0.30", hour), observed_at=T0)
    WITHDRAWALS.apply(withdrawal_wire(1, "CONFIRMED", "70.00"), observed_at=T0)
    DEPOSITS.apply(deposit_wire(9, "REFUNDED", "5.00", None, 20), observed_at=T0)
    member = make_staff("admin")
    sydney = ZoneInfo("Australia/Sydney")
    assert dashboard.hours_are_whole(sydney, dashboard._days(sydney, now, 30))
    from_rollup = dashboard.money_flows(user=member, zone=sydney, now=now)
    monkeypatch.setattr(dashboard, "hours_are_whole", lambda zone, days: False)
    from_rows = dashboard.money_flows(user=member, zone=sydney, now=now)
    assert [(f.currency, f.series) for f in from_rollup] == [
        (f.currency, f.series) for f in from_rows
    ]
    assert from_rollup[0].total("deposits") == Decimal("156.25")  # 10.25+20.25+...+50.25 + 5.00


def test_a_zone_whose_days_start_mid_hour_is_read_from_the_rows():
    india = ZoneInfo("Asia/Kolkata")
    days = dashboard._days(india, datetime(2026, 5, 6, tzinfo=UTC), 30)
    assert not dashboard.hours_are_whole(india, days)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="real concurrent transactions")
@pytest.mark.django_db(transaction=True)
def test_two_transactions_adding_to_the_same_hour_both_count():
    hour = datetime(2026, 5, 1, 5, tzinfo=UTC)
    barrier = threading.Barrier(2)
    errors = []

    def add(amount: str) -> None:
        from django.db import connection as own
        from django.db import transaction

        try:
            with transaction.atomic():
                barrier.wait(timeout=10)
                rollup.add({("deposits", "AUD", hour): Decimal(amount)})
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=add, args=(a,)) for a in ("10.00", "2.50")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert MoneyRollup.objects.get().amount == Decimal("12.50")
