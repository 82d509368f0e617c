"""Sync and reconciliation against the real sandbox over HTTP: the mirror never drifts silently."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from app_flashfx import GBP_RECIPIENT, MODELS, RECIPIENT, SUB_CLIENT, mirrored_ids
from django.utils import timezone
from harness import wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flashfx.client import FlashFXClient
from flashfx.tokens import MemoryTokenStore
from mirrors import reconcile, sync
from mirrors.models import DriftItem, SyncRun
from mirrors.registry import registry
from parties.models import Sender
from payments.mirrors import WITHDRAWALS
from payments.models import Deposit, Withdrawal

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(sandbox):
    flashfx = FlashFXClient(
        sandbox.url, "api@sandbox.local", "sandbox-password", token_store=MemoryTokenStore()
    )
    yield flashfx
    flashfx.close()


def populate(sandbox, client: FlashFXClient) -> None:
    """A little of everything, through the API as the back-office would create it."""
    sandbox.control(
        "deposits/import",
        {
            "count": 30,
            "amount": "100.00",
            "createdFrom": "2026-01-01T00:00:00Z",
            "createdTo": "2026-06-01T00:00:00Z",
        },
    )
    sandbox.fund("500.00")
    sub_client = client.create_sub_client(SUB_CLIENT)
    sandbox.receive_deposit("12.34", subClientId=sub_client.id)
    client.create_sender({"companyName": "Acme Trading Pty Ltd"})
    client.create_recipient(RECIPIENT)
    client.create_withdrawal({"amount": Decimal("0.1"), "currency": "AUD", "recipient": RECIPIENT})
    client.create_withdrawal(
        {
            "amount": Decimal("0.2"),
            "currency": "AUD",
            "recipient": RECIPIENT,
            "externalReference": "HALT_AML",
        }
    )
    client.create_payment(
        {
            "fromCurrency": "AUD",
            "toCurrency": "GBP",
            "size": Decimal("100"),
            "recipient": GBP_RECIPIENT,
        }
    )
    settle(client)


def settle(client: FlashFXClient) -> None:
    """Wait until the sandbox's clock has nothing left to move, so both sides hold still."""

    def settled() -> bool:
        return (
            all(d.status == "CONFIRMED" for d in client.deposits())
            and all(w.status in ("CONFIRMED", "REVIEWING") for w in client.withdrawals())
            and all(p.status == "CLOSED" for p in client.payments())
            and all(s.status == "ACTIVE" for s in client.sub_clients())
        )

    wait_until(settled, what="the sandbox to settle")


def remote_ids(client: FlashFXClient) -> dict[str, set[str]]:
    return {spec.name: {r.id for r in spec.fetch_many(client)} for spec in registry.all()}


def test_a_full_sync_mirrors_every_entity_field_for_field(sandbox, client):
    populate(sandbox, client)
    runs = sync.sync_all(client=client, full=True)
    assert {run.status for run in runs} == {SyncRun.Status.SUCCEEDED}
    assert mirrored_ids() == remote_ids(client)
    for remote in client.withdrawals():
        row = Withdrawal.objects.get(flashfx_id=remote.id)
        assert (row.flashfx_status, row.amount, row.total_fee) == (
            remote.status,
            remote.amount,
            remote.total_fee,
        )
    assert {d.amount for d in Deposit.objects.filter(sub_client__isnull=False)} == {
        Decimal("12.34")
    }
    assert Withdrawal.objects.filter(amount=Decimal("0.1")).exists()  # exact, never via float


def test_a_second_sync_changes_nothing(sandbox, client):
    populate(sandbox, client)
    sync.sync_all(client=client, full=True)
    before = {
        name: dict(model.objects.values_list("flashfx_id", "updated_at"))
        for name, model in MODELS.items()
    }
    runs = sync.sync_all(client=client)
    assert [(r.entity, r.mode, r.created, r.updated) for r in runs] == [
        (name, "incremental", 0, 0) for name in MODELS
    ]
    assert {
        name: dict(model.objects.values_list("flashfx_id", "updated_at"))
        for name, model in MODELS.items()
    } == before


def test_incremental_sync_finds_new_entities_and_status_changes_of_old_ones(sandbox, client):
    sandbox.fund("100.00")
    sandbox.configure(step_delay_seconds=3600)  # nothing moves unless we move it
    payout = client.create_withdrawal(
        {"amount": Decimal("5"), "currency": "AUD", "recipient": RECIPIENT}
    )
    sync.sync_all(client=client, full=True)
    assert Withdrawal.objects.get(flashfx_id=payout.id).flashfx_status == "INITIALISED"
    for status in ("PENDING", "CONFIRMED", "FAILED"):  # a bank return, days later in real life
        assert sandbox.advance("withdrawals", payout.id, status).status_code == 200
    new_deposit = sandbox.receive_deposit("7.00")
    runs = {run.entity: run for run in sync.sync_all(client=client)}
    assert runs["withdrawals"].updated == 1 and runs["deposits"].created == 1
    assert Withdrawal.objects.get(flashfx_id=payout.id).flashfx_status == "FAILED"
    assert Deposit.objects.filter(flashfx_id=new_deposit["id"]).exists()


def test_a_window_with_too_many_rows_is_split_until_each_part_fits(sandbox, client, settings):
    settings.FLASHFX_SYNC_WINDOW_MAX_ROWS = 10
    sandbox.control(
        "deposits/import",
        {"count": 55, "createdFrom": "2026-01-01T00:00:00Z", "createdTo": "2026-01-02T00:00:00Z"},
    )
    run = sync.sync_entity(client=client, entity="deposits", full=True)
    assert run.created == 55 and run.fetched == 55  # the oversize answers were dropped, not applied
    assert run.windows > 6
    assert Deposit.objects.count() == 55


def test_a_sync_backfill_since_a_time_leaves_older_rows_out(sandbox, client):
    sandbox.control(
        "deposits/import",
        {"count": 10, "createdFrom": "2026-01-01T00:00:00Z", "createdTo": "2026-01-10T00:00:00Z"},
    )
    since = timezone.datetime(2026, 1, 6, tzinfo=timezone.get_current_timezone())
    run = sync.sync_entity(client=client, entity="deposits", since=since)
    assert run.mode == "full" and run.created == 5


def test_reconciliation_finds_and_fixes_differences_planted_in_the_mirror(sandbox, client):
    populate(sandbox, client)
    sync.sync_all(client=client, full=True)
    altered = Deposit.objects.filter(flashfx_status="CONFIRMED").first()
    Deposit.objects.filter(pk=altered.pk).update(
        amount=Decimal("999.99"), flashfx_status="REFUNDED"
    )
    lost = Withdrawal.objects.first()
    lost_id = lost.flashfx_id
    lost.delete()
    Sender.objects.create(
        flashfx_id="65f0c0ffee00000000000bad",
        first_name="Ghost",
        flashfx_created_at=timezone.now() - timedelta(hours=1),
    )

    report = reconcile.reconcile(client=client, since=timezone.now() - timedelta(days=3650))

    items = {(i.kind, i.entity, i.flashfx_id): i for i in report.items.all()}
    conflict = items[(DriftItem.Kind.CONFLICT, "deposits", altered.flashfx_id)]
    assert conflict.differences["amount"] == ["999.99", str(altered.amount)]
    assert conflict.differences["flashfx_status"] == ["REFUNDED", "CONFIRMED"]
    assert conflict.resolution == DriftItem.Resolution.APPLIED
    assert items[(DriftItem.Kind.MISSING_LOCALLY, "withdrawals", lost_id)].resolution == "applied"
    assert (
        items[(DriftItem.Kind.MISSING_REMOTELY, "senders", "65f0c0ffee00000000000bad")].resolution
        == "flagged"
    )
    assert len(items) == 3
    restored = Deposit.objects.get(pk=altered.pk)
    assert (restored.amount, restored.flashfx_status) == (altered.amount, "CONFIRMED")
    assert Withdrawal.objects.filter(flashfx_id=lost_id).exists()


def test_the_balance_proof_matches_a_fully_mirrored_account_and_catches_a_gap(sandbox, client):
    populate(sandbox, client)
    sync.sync_all(client=client, full=True)
    checks = {c.currency: c for c in reconcile.balance_proof(client=client)}
    assert checks["AUD"].balanced, (checks["AUD"].reported_cleared, checks["AUD"].implied_cleared)
    Withdrawal.objects.filter(amount=Decimal("0.1")).delete()  # a payout the mirror lost
    checks = {c.currency: c for c in reconcile.balance_proof(client=client)}
    assert checks["AUD"].cleared_difference == Decimal(
        "-1.10"
    )  # FlashFX has 1.10 less: amount and fee


def test_shuffled_and_repeated_versions_converge_to_the_sandbox_state(sandbox, client):
    """Whatever order sync, webhooks and replies deliver versions in, the mirror ends where FlashFX is."""
    sandbox.fund("100.00")
    sandbox.configure(step_delay_seconds=3600)
    payout = client.create_withdrawal(
        {"amount": Decimal("0.3"), "currency": "AUD", "recipient": RECIPIENT}
    )
    versions = [(timezone.now(), client.withdrawal(payout.id))]
    for status in ("PENDING", "CONFIRMED", "FAILED", "PENDING", "FAILED", "REFUNDED"):
        assert sandbox.advance("withdrawals", payout.id, status).status_code == 200
        versions.append((timezone.now(), client.withdrawal(payout.id)))
    final = WITHDRAWALS.remote(versions[-1][1], versions[-1][0], {}).fields

    @settings(
        max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        st.lists(
            st.sampled_from(range(len(versions))),
            min_size=len(versions),
            max_size=3 * len(versions),
        ).flatmap(lambda extra: st.permutations(list(range(len(versions))) + extra))
    )
    def converges(order: list[int]) -> None:
        Withdrawal.objects.all().delete()
        for index in order:
            observed_at, remote = versions[index]
            # A version may be refused on the way (PENDING after CONFIRMED, before the FAILED in
            # between arrived); what matters is where the mirror ends.
            WITHDRAWALS.apply(remote, observed_at=observed_at)
        row = Withdrawal.objects.get(flashfx_id=payout.id)
        assert {name: getattr(row, name) for name in final} == final
        assert row.anomaly == ""

    converges()
