"""Retention (bodies pruned, request ids kept for replay protection) and the webhook-silence
check (changes sync found that no webhook reported)."""

from __future__ import annotations

import json
from datetime import timedelta
from unittest.mock import patch

import pytest
from django.utils import timezone
from processing_support import (
    process,
    quick_logins,
    sandbox_client,
    signed_post,
    store,
    store_body,
)

from mirrors import sync
from mirrors.models import SyncRun
from payments.models import Deposit
from webhooks import tasks
from webhooks.backlog import prune_bodies
from webhooks.models import InboundEvent
from webhooks.silence import silence_alerts

pytestmark = pytest.mark.django_db

Status = InboundEvent.Status


def age(event: InboundEvent, days: float) -> None:
    InboundEvent.objects.filter(pk=event.pk).update(
        received_at=timezone.now() - timedelta(days=days)
    )


# --- Retention ----------------------------------------------------------------------------------


@pytest.fixture
def delivered(sandbox):
    """A real deposit's two webhooks, stored and processed."""
    deposit = sandbox.receive_deposit("12.34")
    received = sandbox.receiver.wait_for_events(
        deposit["id"], ["deposit_initiated", "deposit_cleared"]
    )
    Deposit.objects.create(  # mirrored already (e.g. by sync), so no FlashFX call is needed
        flashfx_id=deposit["id"], flashfx_status="INITIALISED", amount=12.34, currency="AUD"
    )
    events = [store(r) for r in received]
    process(events)
    return [InboundEvent.objects.get(pk=e.pk) for e in events]


def test_prune_empties_old_finished_bodies_and_keeps_the_summary(delivered, settings):
    settings.FLASHFX_WEBHOOK_RETENTION_DAYS = 30
    old, recent = delivered
    age(old, 31)
    age(recent, 29)
    ignored = store_body(b'{"event":"test","id":"1"}', request_id="t-1")
    process([ignored])
    age(ignored, 40)
    unfinished = {
        status: store_body(
            b'{"event":"test","id":"%d"}' % n,
            request_id=f"keep-{status}",
            status=status,
            **({} if status != Status.QUARANTINED else {"accepted": False, "reason": "not_json"}),
        )
        for n, status in enumerate([Status.DEAD, Status.FAILED, Status.QUARANTINED])
    }
    for event in unfinished.values():
        age(event, 90)
    before = {e.pk: e for e in InboundEvent.objects.all()}

    assert tasks.prune_inbound_events.apply().get() == 2  # the beat task, with the setting

    pruned = InboundEvent.objects.get(pk=old.pk)
    assert (bytes(pruned.body), pruned.headers) == (b"", {})
    assert pruned.body_pruned_at is not None
    kept_summary = ("request_id", "event", "entity_id", "body_sha256", "body_size", "outcome")
    for name in (*kept_summary, "status", "accepted", "event_scheduled_at", "attempts"):
        assert getattr(pruned, name) == getattr(before[old.pk], name), name
    assert pruned.body_size == len(bytes(before[old.pk].body)) > 0
    assert InboundEvent.objects.get(pk=ignored.pk).body_pruned_at is not None
    for event in (recent, *unfinished.values()):  # too young, or still wanted by a person
        row = InboundEvent.objects.get(pk=event.pk)
        assert bytes(row.body) == bytes(before[event.pk].body) != b""
        assert row.body_pruned_at is None
    assert prune_bodies() == 0  # once only


def test_a_repeat_of_a_pruned_request_is_still_recognised(delivered, client, settings):
    old, _ = delivered
    body = bytes(old.body)
    age(old, 31)
    prune_bodies(days=30)
    rows = InboundEvent.objects.count()

    with patch.object(tasks.process_inbound_event, "delay") as delay:
        repeat = signed_post(client, settings, body, old.request_id)
        changed = signed_post(client, settings, body.replace(b"12.34", b"99.99"), old.request_id)

    assert (repeat.status_code, repeat.json()) == (200, {"status": "duplicate"})
    assert changed.status_code == 409  # the digest was kept: a different body is still caught
    delay.assert_not_called()
    assert InboundEvent.objects.filter(request_id=old.request_id, accepted=True).count() == 1
    assert InboundEvent.objects.get(pk=old.pk).status == Status.PROCESSED
    assert InboundEvent.objects.count() == rows + 1  # only the conflict was kept, aside
    conflict = InboundEvent.objects.latest("id")
    assert (conflict.status, conflict.accepted) == (Status.CONFLICT, False)


# --- Silence ------------------------------------------------------------------------------------


def test_silence_reports_what_sync_changed_that_no_webhook_reported(sandbox, caplog):
    quick_logins(sandbox)
    client = sandbox_client(sandbox)
    backfilled = sandbox.fund("100.00")  # history before we started: found by the first sync
    first = sync.sync_entity(client=client, entity="deposits")
    assert (first.mode, first.changed_ids) == ("full", [backfilled["id"]])

    heard = sandbox.fund("20.00")  # its webhooks reached us ...
    for received in sandbox.receiver.wait_for_events(
        heard["id"], ["deposit_initiated", "deposit_cleared"]
    ):
        store(received)  # ... but were not processed yet when sync ran
    silent = sandbox.fund("30.00")  # FlashFX gave up on its webhooks: we never got them
    run = sync.sync_entity(client=client, entity="deposits")
    client.close()
    assert run.mode == "incremental"
    assert sorted(run.changed_ids) == sorted([heard["id"], silent["id"]])

    # Not yet: the silence period has not passed since the run.
    assert silence_alerts(minutes=30) == []
    # Half an hour later (the runs moved back in time instead of waiting).
    SyncRun.objects.update(
        started_at=timezone.now() - timedelta(minutes=31),
        finished_at=timezone.now() - timedelta(minutes=31),
    )
    InboundEvent.objects.update(received_at=timezone.now() - timedelta(minutes=31))

    with caplog.at_level("ERROR", logger="webhooks.silence"):
        alerts = silence_alerts(minutes=30)

    assert alerts == [{"sync_run": run.pk, "entity": "deposits", "flashfx_ids": [silent["id"]]}]
    assert "ALERT webhook silence" in caplog.text and silent["id"] in caplog.text
    run.refresh_from_db()
    assert run.silent_ids == [silent["id"]] and run.silence_checked_at is not None
    first.refresh_from_db()  # the backfill: checked, never an alert
    assert first.silent_ids == [] and first.silence_checked_at is not None
    assert silence_alerts(minutes=30) == []  # each run is checked once
    assert Deposit.objects.get(flashfx_id=silent["id"]).flashfx_status == "CONFIRMED"


def test_a_webhook_long_before_the_run_does_not_count_as_reporting_its_change():
    now = timezone.now()
    run = SyncRun.objects.create(
        entity="withdrawals",
        mode="incremental",
        until=now,
        status=SyncRun.Status.SUCCEEDED,
        changed_ids=["a" * 24, "b" * 24],
        started_at=now - timedelta(minutes=40),
        finished_at=now - timedelta(minutes=40),
    )
    long_ago = store_body(json.dumps({"event": "test", "id": "a" * 24}).encode(), request_id="x1")
    InboundEvent.objects.filter(pk=long_ago.pk).update(received_at=now - timedelta(days=2))
    store_body(json.dumps({"event": "test", "id": "b" * 24}).encode(), request_id="x2")
    quarantined = store_body(
        json.dumps({"event": "test", "id": "a" * 24}).encode(),
        request_id="x3",
        accepted=False,
        status=Status.QUARANTINED,
        reason="bad_signature",
    )
    assert quarantined.received_at > run.started_at  # refused at the door: not a report

    assert tasks.check_webhook_silence.apply().get() == 1
    run.refresh_from_db()
    assert run.silent_ids == ["a" * 24]
