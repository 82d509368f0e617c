"""Replaying stored events (webhooks/replay.py) and `manage.py replay_webhooks`: a dry
run shows what would change and changes nothing; a real replay applies each event once."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from harness import close_app_client
from processing_support import (
    app_pointed_at_sandbox,
    assert_mirror_matches,
    dead_while_flashfx_was_down,
    store_body,
)

from payments.models import Withdrawal
from webhooks.models import InboundEvent
from webhooks.replay import replay

pytestmark = pytest.mark.django_db

Status = InboundEvent.Status


@pytest.fixture
def dead(sandbox, settings):
    final, events = dead_while_flashfx_was_down(sandbox, settings)
    close_app_client()
    with app_pointed_at_sandbox(sandbox, settings):  # FlashFX is back
        yield final, events


def snapshot() -> list[tuple]:
    return list(
        InboundEvent.objects.order_by("id").values_list(
            "id", "status", "attempts", "last_error", "outcome", "processed_at"
        )
    )


def window(events, margin=timedelta(seconds=1)) -> dict:
    return {
        "since": min(e.received_at for e in events) - margin,
        "until": max(e.received_at for e in events) + margin,
    }


# --- The service ------------------------------------------------------------------------------


def test_a_dry_run_shows_what_would_change_and_changes_nothing(dead):
    final, events = dead
    before = snapshot()

    results = replay(**window(events), dry_run=True)

    assert [r.event_id for r in results] == [e.pk for e in events]
    assert [r.event for r in results] == [e.event for e in events]
    for result in results:
        assert result.outcome.startswith(
            f"would be: fetched from FlashFX first; Withdrawal {final.id} "
        ), result.outcome
    assert not Withdrawal.objects.exists()
    assert snapshot() == before


def test_a_replay_applies_the_dead_events_of_a_time_range_once(dead):
    final, events = dead
    outside = store_body(b'{"event":"test","id":"1"}', request_id="old-1", status=Status.DEAD)
    InboundEvent.objects.filter(pk=outside.pk).update(
        received_at=timezone.now() - timedelta(days=3)
    )
    done = store_body(b'{"event":"test","id":"2"}', request_id="done-1", status=Status.PROCESSED)

    results = replay(**window(events), dry_run=False)

    assert [r.event_id for r in results] == [e.pk for e in events]
    assert results[0].outcome.startswith(f"fetched from FlashFX first; Withdrawal {final.id} ")
    assert not any("fetched" in r.outcome for r in results[1:])  # mirrored by the first
    assert_mirror_matches("withdrawal", final)
    for event in InboundEvent.objects.filter(pk__in=[e.pk for e in events]):
        assert (event.status, event.attempts, event.last_error) == (Status.PROCESSED, 2, "")
    assert InboundEvent.objects.get(pk=outside.pk).status == Status.DEAD  # not in the range
    assert InboundEvent.objects.get(pk=done.pk).attempts == 0  # never failed: left alone

    state = Withdrawal.objects.values().get()
    assert replay(**window(events), dry_run=False) == []  # nothing failed or dead any more
    assert Withdrawal.objects.values().get() == state


def test_a_replay_that_fails_again_leaves_the_event_dead_with_the_new_error(sandbox, settings):
    _, events = dead_while_flashfx_was_down(sandbox, settings)  # and FlashFX is still away
    try:
        [result] = replay(event_ids=[events[0].pk], dry_run=False)
        [dry] = replay(event_ids=[events[1].pk], dry_run=True)
    finally:
        close_app_client()
    assert result.outcome.startswith("failed: ")
    assert dry.outcome.startswith("would fail: ")
    event = InboundEvent.objects.get(pk=events[0].pk)
    assert (event.status, event.attempts) == (Status.DEAD, 2)
    assert "Traceback" in event.last_error
    assert InboundEvent.objects.get(pk=events[1].pk).attempts == 1  # the dry run: untouched


def test_what_cannot_be_replayed_is_reported_not_replayed():
    quarantined = store_body(
        b'{"event":"test","id":"1"}',
        request_id="q-1",
        accepted=False,
        status=Status.QUARANTINED,
        reason="bad_signature",
    )
    pruned = InboundEvent.objects.create(
        accepted=True,
        request_id="p-1",
        status=Status.PROCESSED,
        event="deposit_cleared",
        entity_id="1",
        body=b"",
        body_sha256="0" * 64,
        body_size=300,
        body_pruned_at=timezone.now(),
    )
    running = store_body(b'{"event":"test","id":"3"}', request_id="r-1", status=Status.PROCESSING)

    results = {
        r.event_id: r.outcome
        for r in replay(event_ids=[quarantined.pk, pruned.pk, running.pk], dry_run=False)
    }

    assert results == {
        quarantined.pk: "skipped: quarantined (bad_signature), never processed",
        pruned.pk: "skipped: its body was pruned after the retention period",
        running.pk: "skipped: being processed right now",
    }
    assert InboundEvent.objects.get(pk=running.pk).status == Status.PROCESSING


# --- The command --------------------------------------------------------------------------------


def run(*args: str) -> tuple[list[str], str]:
    out, err = StringIO(), StringIO()
    call_command("replay_webhooks", *args, stdout=out, stderr=err)
    return out.getvalue().splitlines(), err.getvalue()


def test_the_command_is_a_dry_run_by_default(dead):
    final, events = dead
    before = snapshot()
    lines, summary = run()
    assert len(lines) == 3
    for line, event in zip(lines, events, strict=True):
        assert line.startswith(f"{event.pk} {event.event}: would be: fetched from FlashFX first")
    assert "dry run" in summary
    assert snapshot() == before and not Withdrawal.objects.exists()


def test_the_command_applies_the_events_given_by_id(dead):
    final, events = dead
    lines, _ = run("--id", str(events[0].pk), "--id", str(events[2].pk), "--apply")
    assert [line.split(":")[0] for line in lines] == [
        f"{events[0].pk} withdrawal_initiated",
        f"{events[2].pk} withdrawal_completed",
    ]
    statuses = dict(InboundEvent.objects.values_list("pk", "status"))
    assert [statuses[e.pk] for e in events] == [Status.PROCESSED, Status.DEAD, Status.PROCESSED]
    assert Withdrawal.objects.get().flashfx_status == final.status


def test_the_command_applies_a_time_range(dead):
    final, events = dead
    span = window(events)
    lines, summary = run(
        "--since", span["since"].isoformat(), "--until", span["until"].isoformat(), "--apply"
    )
    assert len(lines) == 3 and "applied" in summary
    assert_mirror_matches("withdrawal", final)
    assert run("--since", span["since"].isoformat(), "--apply")[0] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since must be ISO-8601"),
        (["--until", "2026-13-01T00:00:00Z"], "--until must be ISO-8601"),
        (["--since", "2026-01-01T00:00:00"], "--since needs a UTC offset or Z"),
        (
            ["--since", "2026-02-01T00:00:00Z", "--until", "2026-01-01T00:00:00Z"],
            "--since is after --until",
        ),
        (["--id", "1", "--since", "2026-01-01T00:00:00Z"], "either --id or a time range"),
    ],
)
def test_the_command_refuses_bad_arguments_clearly(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
