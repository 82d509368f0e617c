"""Failures, retries and the dead letter; the claim that applies an event once; the sweeper.

The Celery task runs with `.apply()`, in this process: a `self.retry()` there runs the task
again at once (countdown ignored) with `request.retries` one higher, so a task that keeps
failing shows all its attempts without waiting for the backoff.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from decimal import Decimal
from unittest.mock import patch

import pytest
from django.db import connection
from django.utils import timezone
from harness import close_app_client, point_app_at_nothing, wait_until
from processing_support import (
    BSB_RECIPIENT,
    app_pointed_at_sandbox,
    fund,
    hold,
    sandbox_client,
    signed_post,
    store,
    store_body,
)

from flashfx import types
from payments.mirrors import WITHDRAWALS
from payments.models import Withdrawal
from webhooks import processing, tasks
from webhooks.models import InboundEvent
from webhooks.processing import inbound_event_process

pytestmark = pytest.mark.django_db

Status = InboundEvent.Status
UNKNOWN_ID = "65f0c0ffee00000000000bad"


@pytest.fixture
def app_at_sandbox(sandbox, settings):
    with app_pointed_at_sandbox(sandbox, settings):
        yield sandbox


@pytest.fixture
def few_retries(monkeypatch):
    """Two retries instead of six: three attempts, then the dead letter."""
    monkeypatch.setattr(tasks.process_inbound_event, "max_retries", 2)


def event_for_unknown_withdrawal() -> InboundEvent:
    body = json.dumps(
        {
            "event": "withdrawal_pending",
            "eventScheduledAt": "2026-05-01T02:03:04.005Z",
            "id": UNKNOWN_ID,
            "amount": 250,
            "totalFee": 1,
            "currency": "AUD",
            "statusMessage": "Sent to recipient bank",
        }
    ).encode()
    return store_body(body, request_id="5f0c0ffee000000000000001")


def initiated_withdrawal(sandbox) -> tuple[str, object]:
    """A real payout held at INITIALISED, and its withdrawal_initiated webhook."""
    hold(sandbox)
    fund(sandbox)
    client = sandbox_client(sandbox)
    reply = client.create_withdrawal(
        {"amount": Decimal("4"), "currency": "AUD", "recipient": BSB_RECIPIENT}
    )
    client.close()
    [received] = sandbox.receiver.wait_for_events(reply.id, ["withdrawal_initiated"])
    return reply, received


# --- Failures, retries, dead letter ----------------------------------------------------------


def test_an_event_for_an_entity_flashfx_does_not_know_is_retried_then_dead(
    app_at_sandbox, few_retries
):
    event = event_for_unknown_withdrawal()
    countdowns = []
    real_retry = tasks.process_inbound_event.retry

    def retry(*args, **kwargs):
        countdowns.append(kwargs["countdown"])
        return real_retry(*args, **kwargs)

    with patch.object(tasks.process_inbound_event, "retry", side_effect=retry):
        result = tasks.process_inbound_event.apply(args=(event.pk,))

    assert result.failed() and isinstance(result.result, LookupError)
    event.refresh_from_db()
    assert (event.status, event.attempts) == (Status.DEAD, 3)
    assert event.last_error.startswith("Traceback (most recent call last)")
    assert f"LookupError: FlashFX does not know Withdrawal {UNKNOWN_ID}" in event.last_error
    assert countdowns == [5, 10]  # backoff between the attempts
    assert not Withdrawal.objects.exists()


def test_a_dead_event_is_not_taken_by_a_late_task(app_at_sandbox, few_retries):
    event = event_for_unknown_withdrawal()
    tasks.process_inbound_event.apply(args=(event.pk,))
    result = tasks.process_inbound_event.apply(args=(event.pk,))  # e.g. redelivered
    assert result.get() == "nothing to do: already taken or finished"
    event.refresh_from_db()
    assert (event.status, event.attempts) == (Status.DEAD, 3)


def test_a_failure_while_flashfx_is_down_is_retried_and_then_succeeds(sandbox, settings):
    reply, received = initiated_withdrawal(sandbox)
    event = store(received)

    point_app_at_nothing(settings)  # the entity must be fetched first, and FlashFX is away
    try:
        with pytest.raises(Exception, match="FlashFX|connect|unavailable"):
            inbound_event_process(event_id=event.pk)
        event.refresh_from_db()
        assert event.status == Status.FAILED and "Traceback" in event.last_error
    finally:
        close_app_client()

    with app_pointed_at_sandbox(sandbox, settings):  # back: the retry lands
        result = tasks.process_inbound_event.apply(args=(event.pk,))
    assert result.successful(), result.traceback
    event.refresh_from_db()
    assert (event.status, event.attempts, event.last_error) == (Status.PROCESSED, 2, "")
    assert event.outcome.startswith("fetched from FlashFX first")
    assert Withdrawal.objects.get(flashfx_id=reply.id).flashfx_status == "INITIALISED"


def test_a_payload_that_cannot_be_applied_fails_with_its_traceback():
    """A known event whose payload lacks what its mirror needs: the error is kept, not lost."""
    WITHDRAWALS.apply(
        types.Withdrawal.from_wire(
            {"id": UNKNOWN_ID, "status": "INITIALISED", "amount": 250, "currency": "AUD"}
        ),
        observed_at=timezone.now() - timedelta(days=1),
    )
    body = json.dumps({"event": "withdrawal_pending", "id": UNKNOWN_ID}).encode()  # no amount
    event = store_body(body, request_id="5f0c0ffee000000000000002")
    with pytest.raises(KeyError):
        inbound_event_process(event_id=event.pk)
    event.refresh_from_db()
    assert event.status == Status.FAILED and "KeyError: 'amount'" in event.last_error
    assert Withdrawal.objects.get().flashfx_status == "INITIALISED"  # nothing half-applied


# --- FlashFX slow: nothing else waits ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_while_an_entity_is_fetched_from_a_slow_flashfx_webhooks_are_still_received(
    app_at_sandbox, client, settings
):
    """The fetch happens before the transaction: no lock is held across the HTTP call (on
    SQLite a write transaction locks the whole database, past its 5 s busy timeout)."""
    sandbox = app_at_sandbox
    reply, received = initiated_withdrawal(sandbox)
    event = store(received)
    sandbox.faults(slow=1.0, slow_seconds=6, operations=["withdrawal"], limit=1)
    outcome: list[str] = []

    def worker() -> None:
        try:
            outcome.append(inbound_event_process(event_id=event.pk))
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        wait_until(
            lambda: sandbox.faults_left() == 0,
            what="the slow fetch to be in flight",
        )
        body = json.dumps({"event": "test", "id": "0" * 24}).encode()
        settings.FLASHFX_WEBHOOK_HANDOFF = "per-event"  # its one task, not sent
        with patch.object(tasks.process_inbound_event, "delay"):
            response = signed_post(client, settings, body, "5f0c0ffee000000000000003")
        assert (response.status_code, response.json()) == (200, {"status": "received"})
        assert thread.is_alive()  # the answer came while the fetch was still waiting
    finally:
        thread.join()
    assert outcome and outcome[0].startswith("fetched from FlashFX first")
    assert Withdrawal.objects.get(flashfx_id=reply.id).flashfx_status == "INITIALISED"


# --- The claim: applied once ---------------------------------------------------------------


def test_processing_an_event_a_second_time_does_nothing(sandbox):
    reply, received = initiated_withdrawal(sandbox)
    WITHDRAWALS.apply(reply, observed_at=timezone.now() - timedelta(seconds=5))
    event = store(received)
    first = inbound_event_process(event_id=event.pk)
    assert first.startswith(f"Withdrawal {reply.id} ")
    assert inbound_event_process(event_id=event.pk) == "nothing to do: already taken or finished"
    event.refresh_from_db()
    assert (event.status, event.attempts, event.outcome) == (Status.PROCESSED, 1, first)


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_the_task_apply_the_event_once(sandbox):
    reply, received = initiated_withdrawal(sandbox)
    event = store(received)
    applied = []
    real_apply = processing.apply_prepared

    def counting_apply(prepared, **kwargs):
        applied.append(prepared.flashfx_id)
        return real_apply(prepared, **kwargs)

    # The entity is mirrored already, so no thread needs FlashFX.
    WITHDRAWALS.apply(reply, observed_at=timezone.now() - timedelta(seconds=5))
    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            outcomes.append(inbound_event_process(event_id=event.pk))
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    with patch.object(processing, "apply_prepared", side_effect=counting_apply):
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert errors == []
    assert applied == [reply.id]
    assert sorted(o.startswith("nothing to do") for o in outcomes) == [False] + [True] * 7
    event.refresh_from_db()
    assert (event.status, event.attempts) == (Status.PROCESSED, 1)


# --- The sweeper -------------------------------------------------------------------------------


def aged(event: InboundEvent, *, status: str, received_ago=None, attempt_ago=None, attempts=0):
    now = timezone.now()
    InboundEvent.objects.filter(pk=event.pk).update(
        status=status,
        received_at=now - received_ago if received_ago else event.received_at,
        processed_at=now - attempt_ago if attempt_ago else None,
        attempts=attempts,
    )
    return event.pk


def test_the_sweeper_enqueues_lost_events_and_resets_those_a_dead_worker_left():
    def new(n: int) -> InboundEvent:
        body = json.dumps({"event": "test", "id": f"{n:024x}"}).encode()
        return store_body(body, request_id=f"sweep-{n}")

    seconds, minutes, days = timedelta(seconds=1), timedelta(minutes=1), timedelta(days=1)
    lost = aged(new(1), status=Status.RECEIVED, received_ago=2 * minutes)
    just_received = aged(new(2), status=Status.RECEIVED, received_ago=10 * seconds)
    # Claimed (so attempted once) 11 minutes ago, and never finished: its worker died.
    dead_worker = aged(
        new(3),
        status=Status.PROCESSING,
        received_ago=12 * minutes,
        attempt_ago=11 * minutes,
        attempts=1,
    )
    # A replay of last week's event, running for a few seconds: not a dead worker.
    replaying = aged(
        new(4), status=Status.PROCESSING, received_ago=7 * days, attempt_ago=3 * seconds, attempts=2
    )
    slow = aged(
        new(5),
        status=Status.PROCESSING,
        received_ago=9 * minutes,
        attempt_ago=9 * minutes,
        attempts=1,
    )
    retry_lost = aged(
        new(6), status=Status.FAILED, received_ago=days, attempt_ago=20 * minutes, attempts=3
    )
    retry_pending = aged(
        new(7), status=Status.FAILED, received_ago=3 * minutes, attempt_ago=minutes, attempts=1
    )
    for n, status in enumerate((Status.DEAD, Status.PROCESSED, Status.IGNORED), start=10):
        aged(new(n), status=status, received_ago=days, attempt_ago=days)

    with patch.object(tasks.process_inbound_event, "delay") as delay:
        assert tasks.sweep_inbound_events() == 3

    assert sorted(call.args[0] for call in delay.call_args_list) == sorted(
        [lost, dead_worker, retry_lost]
    )
    statuses = dict(InboundEvent.objects.values_list("pk", "status"))
    assert statuses[dead_worker] == Status.FAILED  # claimable again by the task enqueued
    assert "worker stopped" in InboundEvent.objects.get(pk=dead_worker).last_error
    assert (statuses[replaying], statuses[slow]) == (Status.PROCESSING, Status.PROCESSING)
    assert (statuses[just_received], statuses[retry_pending]) == (Status.RECEIVED, Status.FAILED)

    # What the sweeper enqueued then runs to its end: each applied once.
    for event_id in (lost, dead_worker, retry_lost):
        assert tasks.process_inbound_event.apply(args=(event_id,)).get() == "ignored: test event"
    assert InboundEvent.objects.get(pk=dead_worker).attempts == 2  # the dead worker's, and this


def test_the_sweepers_events_are_processed_once_even_if_the_broker_had_them_too():
    body = json.dumps({"event": "test", "id": "0" * 24}).encode()
    event = store_body(body, request_id="sweep-twice")
    aged(event, status=Status.RECEIVED, received_ago=timedelta(minutes=5))
    with patch.object(tasks.process_inbound_event, "delay") as delay:
        tasks.sweep_inbound_events()
    [call] = delay.call_args_list
    outcomes = [tasks.process_inbound_event.apply(args=call.args).get() for _ in range(2)]
    assert outcomes == ["ignored: test event", "nothing to do: already taken or finished"]


def test_the_beat_schedule_runs_the_sweeper_every_minute(settings):
    schedule = settings.CELERY_BEAT_SCHEDULE
    assert schedule["webhooks-sweep"]["task"] == tasks.sweep_inbound_events.name
    assert schedule["webhooks-sweep"]["schedule"] == 60.0
    assert schedule["webhooks-prune"]["task"] == tasks.prune_inbound_events.name
    assert schedule["webhooks-silence"]["task"] == tasks.check_webhook_silence.name
