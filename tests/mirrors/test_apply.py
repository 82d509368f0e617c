"""The one rule for applying FlashFX's version of an entity to its mirror (mirrors/apply.py)."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from flashfx import types
from mirrors.apply import Outcome
from mirrors.models import StatusChange
from parties.mirrors import SUB_CLIENTS
from parties.models import SubClient
from payments.mirrors import DEPOSITS, WITHDRAWALS
from payments.models import Deposit, Withdrawal

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 5, 1, 2, 3, 4, tzinfo=UTC)
WITHDRAWAL_ID = "65f0c0ffee0000000000a001"


def withdrawal(status: str, **fields) -> types.Withdrawal:
    wire = {
        "id": WITHDRAWAL_ID,
        "status": status,
        "amount": Decimal("250"),
        "currency": "AUD",
        "totalFee": Decimal("1"),
        "externalId": "po-778",
        "createdAt": "2026-05-01T02:00:00.000Z",
        "recipient": {
            "id": None,
            "displayName": "Mia Ng",
            "bsb": "062000",
            "accountNo": "12345678",
        },
        **fields,
    }
    return types.Withdrawal.from_wire(wire)


def apply(status: str, at: datetime, **fields):
    return WITHDRAWALS.apply(withdrawal(status, **fields), observed_at=at)


def test_a_new_entity_is_created_with_its_typed_fields():
    applied = apply("INITIALISED", T0)
    row = applied.obj
    assert applied.outcome is Outcome.CREATED
    assert (row.flashfx_status, row.amount, row.total_fee, row.currency) == (
        "INITIALISED",
        Decimal("250.00"),
        Decimal("1.00"),
        "AUD",
    )
    assert row.recipient_name == "Mia Ng" and row.external_id == "po-778"
    assert row.flashfx_created_at == datetime(2026, 5, 1, 2, 0, tzinfo=UTC)
    assert row.raw["amount"] == "250"  # the payload as received, JSON-ready
    assert row.remote_changed_at == T0


def test_the_same_version_again_changes_nothing_not_even_updated_at():
    first = apply("PENDING", T0).obj
    again = apply("PENDING", T0 + timedelta(minutes=5))
    assert again.outcome is Outcome.UNCHANGED
    row = Withdrawal.objects.get(pk=first.pk)
    assert row.updated_at == first.updated_at
    assert row.remote_changed_at == T0


def test_a_newer_version_moves_the_status_forward():
    apply("INITIALISED", T0)
    applied = apply("CONFIRMED", T0 + timedelta(seconds=2), clearedAt="2026-05-01T02:03:06.000Z")
    assert applied.outcome is Outcome.UPDATED
    assert "flashfx_status" in applied.changed and "cleared_at" in applied.changed
    assert Withdrawal.objects.get().flashfx_status == "CONFIRMED"


def test_an_older_version_never_overwrites_a_newer_one_but_fills_what_was_missing():
    apply("FAILED", T0 + timedelta(seconds=10))
    late = apply("CONFIRMED", T0 + timedelta(seconds=5), clearedAt="2026-05-01T02:03:09.000Z")
    row = Withdrawal.objects.get()
    assert late.outcome is Outcome.STALE
    assert row.flashfx_status == "FAILED"
    assert row.cleared_at == datetime(2026, 5, 1, 2, 3, 9, tzinfo=UTC)  # never had it: filled
    assert row.remote_changed_at == T0 + timedelta(seconds=10)


def test_a_backward_move_is_refused_and_flagged():
    apply("CONFIRMED", T0)
    refused = apply("PENDING", T0 + timedelta(seconds=1))
    row = Withdrawal.objects.get()
    assert refused.outcome is Outcome.REFUSED
    assert row.flashfx_status == "CONFIRMED"
    assert row.anomaly == "refused move CONFIRMED -> PENDING"


@pytest.mark.parametrize(("old", "new"), [("CONFIRMED", "FAILED"), ("FAILED", "PENDING")])
def test_the_documented_backward_looking_moves_are_allowed(old, new):
    apply(old, T0)
    assert apply(new, T0 + timedelta(seconds=1)).outcome is Outcome.UPDATED
    assert Withdrawal.objects.get().flashfx_status == new


def test_an_unknown_status_is_stored_as_received_and_flagged():
    apply("PENDING", T0)
    applied = apply("ON_HOLD_FOR_LUNCH", T0 + timedelta(seconds=1))
    row = Withdrawal.objects.get()
    assert applied.outcome is Outcome.UPDATED
    assert row.flashfx_status == "ON_HOLD_FOR_LUNCH"
    assert row.anomaly == "unknown status ON_HOLD_FOR_LUNCH"


def test_an_unknown_reject_code_is_stored_and_flagged_and_a_known_one_is_not():
    apply("CANCELLED", T0, rejectCode="NEW_CODE_FROM_2027")
    row = Withdrawal.objects.get()
    assert (row.reject_code, row.anomaly) == (
        "NEW_CODE_FROM_2027",
        "unknown rejectCode NEW_CODE_FROM_2027",
    )
    Withdrawal.objects.all().delete()
    apply("CANCELLED", T0, rejectCode="COMPLIANCE_DECLINED")
    assert Withdrawal.objects.get().anomaly == ""


def test_authoritative_reconciliation_overrides_the_order_rules():
    apply("REFUNDED", T0 + timedelta(days=1))
    applied = WITHDRAWALS.apply(withdrawal("CONFIRMED"), observed_at=T0, authoritative=True)
    assert applied.outcome is Outcome.UPDATED
    assert Withdrawal.objects.get().flashfx_status == "CONFIRMED"


def test_a_deposit_links_to_its_mirrored_sub_client():
    sub = types.SubClient.from_wire(
        {
            "id": "65f0c0ffee0000000000c001",
            "status": "ACTIVE",
            "fullName": "Ada L",
            "bsb": "802919",
            "accountNo": "1000001",
        }
    )
    SUB_CLIENTS.apply(sub, observed_at=T0)
    deposit = types.Deposit.from_wire(
        {
            "id": "65f0c0ffee0000000000d001",
            "status": "CONFIRMED",
            "amount": Decimal("0.3"),
            "currency": "AUD",
            "subClient": {"id": "65f0c0ffee0000000000c001"},
        }
    )
    row = DEPOSITS.apply(deposit, observed_at=T0).obj
    assert row.sub_client == SubClient.objects.get() and row.amount == Decimal("0.30")


def test_bulk_apply_follows_the_same_rule():
    apply("CONFIRMED", T0)
    other = types.Withdrawal.from_wire(
        {**withdrawal("PENDING").raw, "id": "65f0c0ffee0000000000a002"}
    )
    counts = WITHDRAWALS.apply_many(
        [withdrawal("PENDING"), other], observed_at=T0 + timedelta(seconds=1)
    )
    assert counts[Outcome.REFUSED] == 1 and counts[Outcome.CREATED] == 1
    assert Withdrawal.objects.get(flashfx_id=WITHDRAWAL_ID).flashfx_status == "CONFIRMED"


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_applications_create_one_row():
    """Ten callers (sync, webhooks, replies) seeing a new deposit at once: one row, no error."""
    deposit = types.Deposit.from_wire(
        {
            "id": "65f0c0ffee0000000000d009",
            "status": "INITIALISED",
            "amount": Decimal("10"),
            "currency": "AUD",
        }
    )
    errors: list[BaseException] = []
    barrier = threading.Barrier(10)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            DEPOSITS.apply(deposit, observed_at=T0 + timedelta(milliseconds=n))
        except BaseException as exc:  # reported below, with the test's failure
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Deposit.objects.filter(flashfx_id="65f0c0ffee0000000000d009").count() == 1


def history(flashfx_id: str = WITHDRAWAL_ID) -> list[tuple[str, str, str]]:
    return list(
        StatusChange.objects.filter(flashfx_id=flashfx_id).values_list(
            "old_status", "new_status", "source"
        )
    )


def test_each_creation_and_status_move_is_written_down_with_what_brought_it():
    WITHDRAWALS.apply(withdrawal("INITIALISED"), observed_at=T0, source="reply")
    WITHDRAWALS.apply(
        withdrawal("INITIALISED", totalFee=Decimal("2")),
        observed_at=T0 + timedelta(seconds=1),
        source="sync",
    )
    WITHDRAWALS.apply(
        withdrawal("PENDING"), observed_at=T0 + timedelta(seconds=2), source="webhook #7"
    )
    WITHDRAWALS.apply(
        withdrawal("INITIALISED"), observed_at=T0 + timedelta(seconds=3), source="sync"
    )  # refused
    WITHDRAWALS.apply(withdrawal("CONFIRMED"), observed_at=T0, source="webhook #8")  # stale
    assert history() == [("", "INITIALISED", "reply"), ("INITIALISED", "PENDING", "webhook #7")]
    change = StatusChange.objects.last()
    assert change.entity == "payments.withdrawal" and change.observed_at == T0 + timedelta(
        seconds=2
    )


def test_a_sync_window_writes_down_its_creations_and_moves_too():
    apply("PENDING", T0)
    other = types.Withdrawal.from_wire(
        {**withdrawal("PENDING").raw, "id": "65f0c0ffee0000000000a002"}
    )
    WITHDRAWALS.apply_many([withdrawal("CONFIRMED"), other], observed_at=T0 + timedelta(seconds=1))
    assert history() == [("", "PENDING", ""), ("PENDING", "CONFIRMED", "sync")]
    assert history(other.id) == [("", "PENDING", "sync")]


def test_the_spec_hears_of_creations_and_moves_in_the_same_transaction(monkeypatch):
    heard: list[tuple[str, bool, str, str]] = []

    def listen(changes):
        assert connection.in_atomic_block
        heard.extend((c.obj.flashfx_id, c.created, c.old_status, c.new_status) for c in changes)

    spec = dataclasses.replace(WITHDRAWALS, on_change=listen)
    spec.apply(withdrawal("PENDING"), observed_at=T0)
    spec.apply(withdrawal("PENDING", totalFee=Decimal("3")), observed_at=T0 + timedelta(seconds=1))
    spec.apply_many([withdrawal("CONFIRMED")], observed_at=T0 + timedelta(seconds=2))
    assert heard == [
        (WITHDRAWAL_ID, True, "", "PENDING"),
        (WITHDRAWAL_ID, False, "PENDING", "CONFIRMED"),
    ]


def test_a_failing_follow_up_undoes_the_apply():
    def broken(changes):
        raise RuntimeError("follow-up failed")

    spec = dataclasses.replace(WITHDRAWALS, on_change=broken)
    with pytest.raises(RuntimeError):
        spec.apply(withdrawal("PENDING"), observed_at=T0)
    assert not Withdrawal.objects.exists() and not StatusChange.objects.exists()
