"""The dashboard's figures (backoffice/dashboard.py): sums exact in Decimal, days cut in the
member's zone (Australia/Sydney), only what is money moved, approvals split by who may sign."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from dashboard_support import (
    approval,
    deposit,
    drift_item,
    event,
    expected,
    payment,
    snapshot,
    sync_run,
    withdrawal,
)
from staff import make_staff

from backoffice import dashboard as board
from backoffice import roles
from mirrors.models import DriftItem, SyncRun
from payments.models import ApprovalSignature, Deposit
from webhooks.models import InboundEvent

pytestmark = pytest.mark.django_db

SYDNEY = ZoneInfo("Australia/Sydney")
# 13:00 on Saturday 5 December 2026 in Sydney (AEDT, UTC+11).
NOW = datetime(2026, 12, 5, 2, 0, tzinfo=UTC)
TODAY = date(2026, 12, 5)


def flow(flows, currency="AUD"):
    return next(f for f in flows if f.currency == currency)


def test_the_member_reads_days_in_sydney_by_default():
    assert board.member_zone(make_staff(roles.VIEWER)) == SYDNEY


def test_a_deposit_counts_on_the_sydney_day_it_arrived_not_the_utc_one():
    viewer = make_staff(roles.VIEWER)
    deposit(datetime(2026, 12, 4, 13, 30, tzinfo=UTC), "1.00")  # 00:30 on the 5th in Sydney
    deposit(datetime(2026, 12, 4, 12, 59, tzinfo=UTC), "2.00")  # 23:59 on the 4th in Sydney
    aud = flow(board.money_flows(user=viewer, zone=SYDNEY, now=NOW))
    assert aud.days[-1] == TODAY and len(aud.days) == 30
    assert aud.today("deposits") == Decimal("1.00")
    assert aud.series["deposits"][-2] == Decimal("2.00")
    assert aud.total("deposits") == Decimal("3.00")


def test_the_thirty_days_start_at_midnight_in_sydney_thirty_days_back():
    viewer = make_staff(roles.VIEWER)
    first_midnight = datetime(2026, 11, 6, 0, 0, tzinfo=SYDNEY)  # = 5 Nov 13:00 UTC
    deposit(first_midnight, "5.00")
    deposit(first_midnight - timedelta(seconds=1), "7.00")  # 23:59:59 on the 5th: outside
    deposit(NOW + timedelta(days=1), "9.00")  # dated tomorrow (a clock ahead): outside
    aud = flow(board.money_flows(user=viewer, zone=SYDNEY, now=NOW))
    assert aud.days[0] == date(2026, 11, 6)
    assert aud.series["deposits"][0] == Decimal("5.00")
    assert aud.total("deposits") == Decimal("5.00")


def test_sums_are_exact_decimals_per_currency_with_fees_of_deposits_and_payouts():
    viewer = make_staff(roles.VIEWER)
    for _ in range(10):
        deposit(NOW - timedelta(hours=1), "0.10", total_fee=Decimal("0.01"))
    deposit(NOW - timedelta(hours=1), "1000000.07", currency="USD")
    withdrawal(NOW - timedelta(hours=1), "0.20", total_fee=Decimal("0.02"))
    aud, usd = flow(board.money_flows(user=viewer, zone=SYDNEY, now=NOW)), None
    usd = flow(board.money_flows(user=viewer, zone=SYDNEY, now=NOW), "USD")
    assert aud.today("deposits") == Decimal("1.00")
    assert isinstance(aud.today("deposits"), Decimal)
    assert aud.today("fees") == Decimal("0.12")
    assert aud.today("payouts") == Decimal("0.20")
    assert usd.today("deposits") == Decimal("1000000.07")
    assert aud.net("today") == Decimal("1.00") - Decimal("0.20") - Decimal("0.12")


def test_only_money_that_moved_counts():
    viewer = make_staff(roles.VIEWER)
    at = NOW - timedelta(hours=2)
    deposit(at, "100.00")
    deposit(at, "900.00", flashfx_status="CANCELLED")
    withdrawal(at, "10.00", flashfx_status="PENDING")
    for status in ("FAILED", "REFUNDED", "CANCELLED"):
        withdrawal(at, "1000.00", flashfx_status=status)
    payment(at, "30.00", flashfx_status="OPEN")
    payment(at, "3000.00", flashfx_status="FAILED")
    # A refund counts on the day it was refunded, for what was refunded.
    deposit(
        at - timedelta(days=60),
        "400.00",
        flashfx_status="REFUNDED",
        refund_amount=Decimal("399.50"),
        refunded_at=at,
    )
    aud = flow(board.money_flows(user=viewer, zone=SYDNEY, now=NOW))
    assert aud.today("deposits") == Decimal("100.00")
    assert aud.today("payouts") == Decimal("10.00")
    assert aud.today("payments") == Decimal("30.00")
    assert aud.today("refunds") == Decimal("399.50")


def test_a_member_sees_only_the_sources_they_may_read():
    reader = make_staff(None, "depositsonly")
    from django.contrib.auth.models import Permission

    reader.user_permissions.add(Permission.objects.get(codename="view_deposit"))
    withdrawal(NOW - timedelta(hours=1), "10.00")
    aud = flow(board.money_flows(user=reader, zone=SYDNEY, now=NOW))
    assert [k for k, _, _ in aud.sources] == ["deposits", "refunds", "fees"]
    assert "payouts" not in aud.series


def test_balances_give_the_last_reading_and_each_days_closing_cleared_balance():
    snapshot(datetime(2026, 12, 3, 1, 0, tzinfo=UTC), "100.00")
    snapshot(datetime(2026, 12, 3, 12, 0, tzinfo=UTC), "150.00")  # 23:00 Sydney: the 3rd's last
    snapshot(datetime(2026, 12, 3, 13, 30, tzinfo=UTC), "175.00")  # 00:30 on the 4th in Sydney
    snapshot(datetime(2026, 12, 5, 1, 0, tzinfo=UTC), "200.25", "12.50")
    snapshot(datetime(2026, 12, 5, 1, 0, tzinfo=UTC), "9.99", currency="USD")
    found = board.balances(zone=SYDNEY, now=NOW)
    assert [b.currency for b in found] == ["AUD", "USD"]
    aud = found[0]
    assert (aud.cleared, aud.pending) == (Decimal("200.25"), Decimal("12.50"))
    assert aud.read_at == datetime(2026, 12, 5, 1, 0, tzinfo=UTC)
    assert aud.history == [
        (date(2026, 12, 3), Decimal("150.00")),
        (date(2026, 12, 4), Decimal("175.00")),
        (date(2026, 12, 5), Decimal("200.25")),
    ]


def test_without_a_recent_reading_the_last_one_ever_is_shown():
    snapshot(NOW - timedelta(days=90), "5.00")
    (aud,) = board.balances(zone=SYDNEY, now=NOW)
    assert aud.cleared == Decimal("5.00") and aud.history == []


def test_no_balance_read_yet_is_an_empty_list():
    assert board.balances(zone=SYDNEY, now=NOW) == []


def test_deposits_to_review_count_new_and_flagged_with_the_oldest():
    old = NOW - timedelta(days=3)
    deposit(old, review_state=Deposit.Review.NEW)
    deposit(NOW - timedelta(hours=1), review_state=Deposit.Review.NEW)
    deposit(NOW - timedelta(days=1), review_state=Deposit.Review.FLAGGED)
    deposit(NOW - timedelta(days=9), review_state=Deposit.Review.ACCEPTED)
    new, flagged = board.deposits_to_review()
    assert (new.count, new.oldest) == (2, old)
    assert new.url == "/deposits/?review=new&sort=oldest"
    assert (flagged.count, flagged.oldest) == (1, NOW - timedelta(days=1))


def test_approvals_split_into_mine_to_sign_and_waiting_for_others():
    maker = make_staff(roles.OPERATOR, "maker")
    me = make_staff(roles.APPROVER, "me")
    other = make_staff(roles.APPROVER, "other")
    oldest = NOW - timedelta(hours=5)
    approval(maker, at=oldest)  # mine to sign
    approval(maker, at=NOW - timedelta(hours=1))  # mine to sign
    signed = approval(maker, at=NOW - timedelta(hours=3), required=2)  # I signed: others'
    ApprovalSignature.objects.create(approval=signed, signer=me, payload_hash="0" * 64)
    approval(me, at=NOW - timedelta(hours=4))  # my own request: others'
    approval(maker, at=NOW - timedelta(hours=6), expires_at=NOW - timedelta(minutes=1))  # expired
    approval(maker, at=NOW - timedelta(hours=7), state="approved")  # decided
    approval(maker, action="deposit.refund", permission="payments.approve_refund", at=oldest)
    found = board.approvals_waiting(user=me, now=NOW)
    mine = {w.label: (w.count, w.oldest) for w in found["mine"]}
    others = {w.label: (w.count, w.oldest) for w in found["others"]}
    assert mine == {"Payouts": (2, oldest), "Deposit refunds": (1, oldest)}
    assert others == {"Payouts": (2, NOW - timedelta(hours=4))}
    assert found["mine"][0].url == "/payouts/waiting/"
    # The same approvals for a member who may approve nothing all wait for others.
    found = board.approvals_waiting(user=other, now=NOW)
    assert {w.label: w.count for w in found["mine"]} == {"Payouts": 4, "Deposit refunds": 1}
    viewer = make_staff(roles.VIEWER)
    found = board.approvals_waiting(user=viewer, now=NOW)
    assert found["mine"] == []
    assert {w.label: w.count for w in found["others"]} == {"Payouts": 4, "Deposit refunds": 1}


def test_overdue_expected_payments_are_unmatched_and_due_before_today_in_sydney():
    maker = make_staff(roles.OPERATOR)
    expected(maker, due_on=date(2026, 12, 1))
    expected(maker, due_on=date(2026, 12, 4))
    expected(maker, due_on=TODAY)  # due today: not overdue yet
    matched = expected(maker, due_on=date(2026, 11, 1))
    matched.deposit = deposit(NOW - timedelta(days=30))
    matched.save()
    # 23:30 UTC on the 4th is already the 5th in Sydney: the 4th's expectation is overdue.
    found = board.expected_overdue(zone=SYDNEY, now=datetime(2026, 12, 4, 23, 30, tzinfo=UTC))
    assert (found.count, found.oldest) == (2, date(2026, 12, 1))
    assert found.oldest_is_due_date


def test_webhook_health_counts_the_last_day_and_every_dead_letter():
    S = InboundEvent.Status
    event(S.PROCESSED, NOW - timedelta(minutes=3))
    event(S.QUARANTINED, NOW - timedelta(minutes=1), accepted=False)  # not a received webhook
    event(S.FAILED, NOW - timedelta(hours=2))
    event(S.FAILED, NOW - timedelta(hours=25))  # older than a day
    event(S.QUARANTINED, NOW - timedelta(hours=23))
    event(S.DEAD, NOW - timedelta(days=10))
    found = board.webhook_health(now=NOW)
    assert found.last_received_at == NOW - timedelta(minutes=3)
    assert (found.failed, found.quarantined, found.dead) == (1, 2, 1)


def test_sync_health_names_every_entity_with_its_last_success_and_a_failing_one():
    S = SyncRun.Status
    sync_run("deposits", S.SUCCEEDED, NOW - timedelta(minutes=10))
    sync_run("deposits", S.SUCCEEDED, NOW - timedelta(minutes=5))
    sync_run("deposits", S.RUNNING, NOW - timedelta(minutes=1))
    sync_run("withdrawals", S.SUCCEEDED, NOW - timedelta(hours=1))
    sync_run("withdrawals", S.FAILED, NOW - timedelta(minutes=2))
    found = {s.entity: s for s in board.sync_health()}
    assert set(found) == {
        "subclients",
        "senders",
        "recipients",
        "deposits",
        "withdrawals",
        "payments",
    }
    assert found["deposits"].last_ok == NOW - timedelta(minutes=5)
    assert not found["deposits"].failing
    assert found["withdrawals"].failing
    assert found["payments"].last_ok is None and not found["payments"].failing


def test_open_drift_items_are_the_flagged_ones():
    drift_item(DriftItem.Resolution.FLAGGED)
    drift_item(DriftItem.Resolution.FLAGGED)
    drift_item(DriftItem.Resolution.APPLIED)
    assert board.drift_items_open() == 2


def test_the_worker_queue_length_is_read_from_the_broker():
    from backoffice.celery import app

    name = "dashboard-tests-queue"
    with app.connection_for_write() as conn:
        queue = conn.SimpleQueue(name)
        try:
            queue.clear()
            before = board.worker_queue_length(queues=(name,))
            queue.put({"n": 1})
            queue.put({"n": 2})
            assert before == 0
            assert board.worker_queue_length(queues=(name,)) == 2
        finally:
            queue.clear()
            queue.queue.delete()
            queue.close()


def test_a_broker_that_cannot_be_read_is_unknown_not_an_error(caplog):
    assert board.worker_queue_length(broker_url="redis://127.0.0.1:1/0") is None
    assert "worker queue length unknown" in caplog.text
