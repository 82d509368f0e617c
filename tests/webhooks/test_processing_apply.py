"""Processing the sandbox's own webhooks: each event family moves the mirror to FlashFX's state.

The sandbox drives an entity through its states and sends its real webhooks; the test stores
them as the receiver does (accepted, RECEIVED) and runs the worker's service on them. The mirror
then holds what FlashFX holds, field for field (read back with the test's own client).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.utils import timezone
from processing_support import (
    BSB_RECIPIENT,
    GBP_RECIPIENT,
    SUB_CLIENT,
    app_pointed_at_sandbox,
    assert_mirror_matches,
    force,
    fund,
    hold,
    process,
    regular,
    row_state,
    sandbox_client,
    store,
    store_body,
)

from parties.mirrors import SUB_CLIENTS
from parties.models import SubClient
from payments.mirrors import DEPOSITS, PAYMENTS, WITHDRAWALS
from payments.models import Deposit, Payment, Withdrawal
from webhooks.models import InboundEvent
from webhooks.processing import inbound_event_process
from webhooks.replay import replay

pytestmark = pytest.mark.django_db

Status = InboundEvent.Status
ORDERS = ["as delivered", "reversed"]


@pytest.fixture
def app_at_sandbox(sandbox, settings):
    with app_pointed_at_sandbox(sandbox, settings):
        yield sandbox


@pytest.fixture
def client(sandbox):
    hold(sandbox)
    flashfx = sandbox_client(sandbox)
    yield flashfx
    flashfx.close()


def replay_in(order: str, received: list, seed) -> list[str]:
    """A fresh mirror holding the entity as first seen, then the events in the given order."""
    for model in (Deposit, Withdrawal, Payment):
        model.objects.all().delete()
    InboundEvent.objects.all().delete()
    seed()
    events = [store(r) for r in (received if order == "as delivered" else received[::-1])]
    outcomes = process(events)
    assert {e.status for e in InboundEvent.objects.all()} == {Status.PROCESSED}
    return outcomes


# --- Each family, field for field -----------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
def test_deposit_events_bring_the_mirror_to_flashfxs_deposit(sandbox, client, order):
    sub_client = client.create_sub_client(SUB_CLIENT)
    force(sandbox, "subclients", sub_client.id, "ACTIVE")
    SUB_CLIENTS.apply(client.sub_client(sub_client.id), observed_at=timezone.now())
    deposit = sandbox.receive_deposit("12.34", subClientId=sub_client.id)
    seen_at = timezone.now()
    first_seen = client.deposit(deposit["id"])  # as sync would have mirrored it
    force(sandbox, "deposits", deposit["id"], "REVIEWING")
    force(sandbox, "deposits", deposit["id"], "CONFIRMED")
    client.refund_deposit(deposit["id"], Decimal("2.34"), "paid twice")
    force(sandbox, "deposits", deposit["id"], "REFUNDED")
    received = sandbox.receiver.wait_for_events(
        deposit["id"],
        [
            "deposit_initiated",
            "deposit_reviewing",
            "deposit_cleared",
            "deposit_refunding",
            "deposit_refunded",
        ],
    )

    replay_in(order, received, lambda: DEPOSITS.apply(first_seen, observed_at=seen_at))

    final = client.deposit(deposit["id"])
    assert final.status == "REFUNDED"
    assert_mirror_matches("deposit", final)
    row = Deposit.objects.get(flashfx_id=deposit["id"])
    assert (row.refund_amount, row.refund_reason) == (Decimal("2.34"), "paid twice")
    assert row.amount == Decimal("12.34")  # "amount":12.34 on the wire, never a float
    assert row.sub_client == SubClient.objects.get(flashfx_id=sub_client.id)


def test_a_cancelled_deposit(sandbox, client):
    deposit = sandbox.receive_deposit("40.00")
    seen_at = timezone.now()
    first_seen = client.deposit(deposit["id"])
    force(sandbox, "deposits", deposit["id"], "CANCELLED")
    received = sandbox.receiver.wait_for_events(
        deposit["id"], ["deposit_initiated", "deposit_cancelled"]
    )
    replay_in(
        "as delivered",
        received,
        lambda: DEPOSITS.apply(first_seen, observed_at=seen_at),
    )
    assert_mirror_matches("deposit", client.deposit(deposit["id"]))


@pytest.mark.parametrize("order", ORDERS)
def test_withdrawal_events_bring_the_mirror_to_flashfxs_withdrawal(sandbox, client, order):
    fund(sandbox)
    seen_at = timezone.now()
    reply = client.create_withdrawal(
        {
            "amount": Decimal("10.5"),
            "currency": "AUD",
            "externalId": "po-778",
            "recipient": BSB_RECIPIENT,
        }
    )
    for to in ("PENDING", "CONFIRMED", "FAILED"):
        force(sandbox, "withdrawals", reply.id, to)
    force(sandbox, "withdrawals", reply.id, "REFUNDED", refundReason="Account closed")
    received = sandbox.receiver.wait_for_events(
        reply.id,
        [
            "withdrawal_initiated",
            "withdrawal_pending",
            "withdrawal_completed",
            "withdrawal_failed",
            "withdrawal_refunded",
        ],
    )

    replay_in(order, received, lambda: WITHDRAWALS.apply(reply, observed_at=seen_at))

    final = client.withdrawal(reply.id)
    assert final.status == "REFUNDED"
    assert_mirror_matches("withdrawal", final)
    row = Withdrawal.objects.get(flashfx_id=reply.id)
    assert (row.amount, row.refund_amount, row.refund_reason) == (
        Decimal("10.50"),
        Decimal("10.50"),
        "Account closed",
    )
    assert row.cleared_at is not None and row.refunded_at is not None


def test_a_withdrawal_cancelled_by_compliance_keeps_its_reject_code(sandbox, client):
    fund(sandbox)
    seen_at = timezone.now()
    reply = client.create_withdrawal(
        {"amount": Decimal("3"), "currency": "AUD", "recipient": BSB_RECIPIENT}
    )
    force(sandbox, "withdrawals", reply.id, "REVIEWING")
    force(sandbox, "withdrawals", reply.id, "CANCELLED", rejectCode="FRAUD")
    received = sandbox.receiver.wait_for_events(
        reply.id, ["withdrawal_initiated", "withdrawal_reviewing", "withdrawal_cancelled"]
    )
    replay_in(
        "as delivered",
        received,
        lambda: WITHDRAWALS.apply(reply, observed_at=seen_at),
    )
    final = client.withdrawal(reply.id)
    assert_mirror_matches("withdrawal", final)
    row = Withdrawal.objects.get(flashfx_id=reply.id)
    assert (row.flashfx_status, row.reject_code) == ("CANCELLED", "FRAUD")
    assert row.rejected_at is not None


@pytest.mark.parametrize("order", ORDERS)
def test_payment_events_bring_the_mirror_to_flashfxs_payment(sandbox, client, order):
    fund(sandbox)
    seen_at = timezone.now()
    reply = client.create_payment(
        {
            "fromCurrency": "AUD",
            "toCurrency": "GBP",
            "size": Decimal("100"),
            "externalId": "fx-1",
            "recipient": GBP_RECIPIENT,
        }
    )
    force(sandbox, "payments", reply.id, "CURRENCY_CONVERTED")
    force(sandbox, "payments", reply.id, "CLOSED")
    received = sandbox.receiver.wait_for_events(
        reply.id, ["currency_converted", "payment_complete"]
    )

    replay_in(order, received, lambda: PAYMENTS.apply(reply, observed_at=seen_at))

    final = client.payment(reply.id)
    assert final.status == "CLOSED" and final.to_amount
    assert_mirror_matches("payment", final)


def test_the_fx_leg_alone_keeps_the_payment_open_and_fills_its_amounts(sandbox, client):
    fund(sandbox)
    seen_at = timezone.now()
    reply = client.create_payment(
        {
            "fromCurrency": "AUD",
            "toCurrency": "GBP",
            "size": Decimal("50"),
            "recipient": GBP_RECIPIENT,
        }
    )
    force(sandbox, "payments", reply.id, "CURRENCY_CONVERTED")
    received = sandbox.receiver.wait_for_events(reply.id, ["currency_converted"])
    replay_in("as delivered", received, lambda: PAYMENTS.apply(reply, observed_at=seen_at))
    final = client.payment(reply.id)
    assert final.status == "OPEN"
    assert_mirror_matches("payment", final)


def test_a_failed_payment(sandbox, client):
    fund(sandbox)
    seen_at = timezone.now()
    reply = client.create_payment(
        {
            "fromCurrency": "AUD",
            "toCurrency": "GBP",
            "size": Decimal("20"),
            "recipient": GBP_RECIPIENT,
        }
    )
    force(sandbox, "payments", reply.id, "FAILED")
    received = sandbox.receiver.wait_for_events(reply.id, ["payment_failed"])
    replay_in("as delivered", received, lambda: PAYMENTS.apply(reply, observed_at=seen_at))
    assert_mirror_matches("payment", client.payment(reply.id))


@pytest.mark.parametrize("order", ORDERS)
def test_sub_client_events_bring_the_mirror_to_flashfxs_sub_client(sandbox, client, order):
    seen_at = timezone.now()
    reply = client.create_sub_client(SUB_CLIENT)
    for to in ("ACTIVE", "DEACTIVATED", "ACTIVE", "DISABLED"):
        force(sandbox, "subclients", reply.id, to)
    received = sandbox.receiver.wait_for_events(
        reply.id,
        [
            "subclient_initiated",
            "subclient_active",
            "subclient_deactivated",
            "subclient_active",
            "subclient_disabled",
        ],
    )

    def seed() -> None:
        SubClient.objects.all().delete()
        SUB_CLIENTS.apply(reply, observed_at=seen_at)

    replay_in(order, received, seed)

    final = client.sub_client(reply.id)
    assert final.status == "DISABLED"
    assert_mirror_matches("subclient", final)


def test_a_sub_client_that_fails_kyc(sandbox, client):
    seen_at = timezone.now()
    reply = client.create_sub_client(SUB_CLIENT)
    force(sandbox, "subclients", reply.id, "UNAPPROVED")
    force(sandbox, "subclients", reply.id, "FAILED_KYC")
    received = sandbox.receiver.wait_for_events(
        reply.id, ["subclient_initiated", "subclient_unapproved", "subclient_failed_kyc"]
    )
    replay_in(
        "as delivered",
        received,
        lambda: SUB_CLIENTS.apply(reply, observed_at=seen_at),
    )
    assert_mirror_matches("subclient", client.sub_client(reply.id))


# --- Duplicates --------------------------------------------------------------------------------


def test_the_same_event_under_another_request_id_changes_nothing_the_second_time(sandbox, client):
    """A payout with a callbackUri gets each event twice (regular and ad hoc, docs/flashfx.md §4.1, §5.32): the same
    body under two request ids, so both are accepted and both are processed."""
    fund(sandbox)
    seen_at = timezone.now()
    reply = client.create_withdrawal(
        {
            "amount": Decimal("7.25"),
            "currency": "AUD",
            "recipient": BSB_RECIPIENT,
            "callbackUri": sandbox.receiver.url + "?token=abc",
        }
    )
    WITHDRAWALS.apply(reply, observed_at=seen_at)
    force(sandbox, "withdrawals", reply.id, "PENDING")
    force(sandbox, "withdrawals", reply.id, "CONFIRMED")
    events = ["withdrawal_initiated", "withdrawal_pending", "withdrawal_completed"]
    sandbox.receiver.wait_for_events(reply.id, [e for e in events for _ in (1, 2)])
    received = sandbox.receiver.for_entity(reply.id)
    firsts = regular(received)
    twins = [r for r in received if r not in firsts]
    assert [json.loads(r.body) for r in twins] == [json.loads(r.body) for r in firsts]

    process([store(r) for r in firsts])
    after_first = row_state("withdrawal", reply.id)
    outcomes = process([store(r) for r in twins])

    assert row_state("withdrawal", reply.id) == after_first  # updated_at included
    assert all(o.endswith(("unchanged", "stale")) for o in outcomes), outcomes
    assert_mirror_matches("withdrawal", client.withdrawal(reply.id))


def test_an_event_processed_again_is_not_applied_again(sandbox, client):
    fund(sandbox)
    seen_at = timezone.now()
    reply = client.create_withdrawal(
        {"amount": Decimal("1"), "currency": "AUD", "recipient": BSB_RECIPIENT}
    )
    WITHDRAWALS.apply(reply, observed_at=seen_at)
    force(sandbox, "withdrawals", reply.id, "PENDING")
    received = sandbox.receiver.wait_for_events(
        reply.id, ["withdrawal_initiated", "withdrawal_pending"]
    )
    event = store(received[1])
    assert process([event]) == [
        f"Withdrawal {reply.id} updated (flashfx_status, status_message, raw)"
    ]
    state = row_state("withdrawal", reply.id)

    # The task delivered twice (late ack, redelivery): the claim finds it finished.
    assert inbound_event_process(event_id=event.pk) == "nothing to do: already taken or finished"
    # Replayed on purpose by a person: applied through the rule, which finds nothing new.
    [result] = replay(event_ids=[event.pk], dry_run=False)
    assert result.outcome == f"Withdrawal {reply.id} unchanged"
    assert row_state("withdrawal", reply.id) == state


# --- Entities we do not mirror yet --------------------------------------------------------------


def test_an_event_for_an_entity_not_mirrored_yet_fetches_it_from_flashfx_first(
    app_at_sandbox, client
):
    sandbox = app_at_sandbox
    fund(sandbox)
    reply = client.create_withdrawal(
        {
            "amount": Decimal("12.5"),
            "currency": "AUD",
            "externalReference": "INV 1",
            "recipient": BSB_RECIPIENT,
        }
    )
    [initiated] = sandbox.receiver.wait_for_events(reply.id, ["withdrawal_initiated"])
    assert Withdrawal.objects.count() == 0

    [outcome] = process([store(initiated)])

    assert outcome.startswith(f"fetched from FlashFX first; Withdrawal {reply.id} ")
    row = Withdrawal.objects.get(flashfx_id=reply.id)
    # What the payload does not carry came from the API: the whole entity is mirrored.
    assert (row.external_reference, row.rail, row.recipient_name) == ("INV 1", "BECS", "Mia Ng")
    assert row.flashfx_created_at == reply.created_at

    force(sandbox, "withdrawals", reply.id, "PENDING")
    force(sandbox, "withdrawals", reply.id, "CONFIRMED")
    received = sandbox.receiver.wait_for_events(
        reply.id, ["withdrawal_initiated", "withdrawal_pending", "withdrawal_completed"]
    )
    later = process([store(r) for r in received[1:]])
    assert not any("fetched" in o for o in later)  # mirrored now: the payloads suffice
    assert_mirror_matches("withdrawal", client.withdrawal(reply.id))


def test_a_deposit_not_mirrored_yet_is_fetched_with_its_sender(app_at_sandbox, client):
    sandbox = app_at_sandbox
    deposit = sandbox.receive_deposit("99.99")
    force(sandbox, "deposits", deposit["id"], "CONFIRMED")
    received = sandbox.receiver.wait_for_events(
        deposit["id"], ["deposit_initiated", "deposit_cleared"]
    )
    outcomes = process([store(r) for r in received])
    assert outcomes[0].startswith("fetched from FlashFX first")
    assert_mirror_matches("deposit", client.deposit(deposit["id"]))


# --- Nothing to apply -----------------------------------------------------------------------------


def test_the_test_event_is_ignored(sandbox):
    queued = sandbox.control("webhooks/test", {}).json()
    [received] = sandbox.receiver.wait_for_events(queued["entityId"], ["test"])
    event = store(received)
    assert process([event]) == ["ignored: test event"]
    event.refresh_from_db()
    assert (event.status, event.outcome) == (Status.IGNORED, "ignored: test event")


@pytest.mark.parametrize(
    ("payload", "outcome"),
    [
        (
            {
                "event": "conversion_converted",
                "id": "65f0c0ffee0000000000e001",
                "fromAmount": 100.5,
                "fromCurrency": "AUD",
                "toAmount": 52.3,
                "toCurrency": "GBP",
                "rate": 0.5204,
                "externalId": "cv-1",
            },
            "ignored: conversion events are not mirrored",
        ),
        (
            {
                "event": "ams_completed",
                "id": "65f0c0ffee0000000000e002",
                "name": "Ada Lovelace",
                "country": "AU",
                "status": "COMPLETED",
            },
            "ignored: ams events are not mirrored",
        ),
        (
            {
                "event": "rfi_created",
                "id": "65f0c0ffee0000000000e003",
                "statusMessage": "Please explain",
                "deadline": "2026-06-01T00:00:00.000Z",
                "depositIds": [],
                "withdrawalIds": ["65f0c0ffee0000000000a001"],
                "paymentIds": [],
            },
            "ignored: rfi events are not mirrored",
        ),
        (
            {"event": "withdrawal_teleported", "id": "65f0c0ffee0000000000e004"},
            "ignored: unknown event type 'withdrawal_teleported'",
        ),
        (
            {"event": "balance_changed", "id": 42, "eventScheduledAt": "not a time"},
            "ignored: unknown event type 'balance_changed'",
        ),
    ],
)
def test_events_we_do_not_mirror_are_ignored_with_the_reason(payload, outcome):
    """Documented (docs/flashfx.md §4.6) but not mirrored, or not documented at all: stored, never a crash."""
    body = json.dumps({"eventScheduledAt": "2026-05-01T02:03:04.005Z", **payload}).encode()
    event = store_body(body, request_id=f"{payload['event']}-1")
    assert process([event]) == [outcome]
    event.refresh_from_db()
    assert (event.status, event.outcome, event.last_error) == (Status.IGNORED, outcome, "")
    assert event.processed_at is not None and event.attempts == 1
