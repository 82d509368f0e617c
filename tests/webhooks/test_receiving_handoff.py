"""The coalesced hand-off (FLASHFX_WEBHOOK_HANDOFF=coalesced, production's default with Redis).

A request publishes a drain task only when none is queued; the drain clears the flag, then
processes every RECEIVED event. These tests use a real Redis (this test process's own database) for the flag and
count the Celery publishes: what must hold is that every committed event is processed by some
drain, and that a burst costs one publish, not one per event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from unittest.mock import patch

import pytest
from processing_support import signed_post

from backoffice import metrics
from webhooks import backlog, processing, tasks
from webhooks.models import InboundEvent

Status = InboundEvent.Status


@pytest.fixture
def coalesced(settings, claimed_redis_url):
    settings.REDIS_URL = claimed_redis_url
    settings.FLASHFX_WEBHOOK_HANDOFF = "coalesced"
    tasks.drain_flag.cache_clear()
    tasks.drain_flag().clear()
    yield tasks.drain_flag()
    tasks.drain_flag().clear()
    tasks.drain_flag.cache_clear()


@pytest.fixture
def published():
    """Celery publishes, counted instead of sent: (drains, single-event tasks)."""
    with (
        patch.object(tasks.drain_inbound_events, "delay") as drains,
        patch.object(tasks.process_inbound_event, "delay") as singles,
        patch.object(tasks.process_inbound_event, "apply_async") as retries,
    ):
        yield drains, singles, retries


def deliver(client, settings, django_capture_on_commit_callbacks, n: int, start: int = 0):
    for i in range(start, start + n):
        body = json.dumps({"event": "test", "id": f"{i:024x}"}).encode()
        with django_capture_on_commit_callbacks(execute=True):
            response = signed_post(client, settings, body, f"handoff-{i}")
        assert (response.status_code, response.json()) == (200, {"status": "received"})


@pytest.mark.django_db
def test_a_burst_of_events_publishes_one_drain_which_processes_them_all(
    client, settings, django_capture_on_commit_callbacks, coalesced, published
):
    drains, singles, _ = published
    deliver(client, settings, django_capture_on_commit_callbacks, 5)

    assert (drains.call_count, singles.call_count) == (1, 0)
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {Status.RECEIVED}

    assert tasks.drain_inbound_events() == 5
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {Status.IGNORED}
    assert (
        tasks.drain_inbound_events() == 0
    )  # a second drain (e.g. redelivered) finds nothing to do


@pytest.mark.django_db
def test_an_event_committed_after_the_drain_started_queues_the_next_drain(
    client, settings, django_capture_on_commit_callbacks, coalesced, published
):
    drains, _, _ = published
    deliver(client, settings, django_capture_on_commit_callbacks, 1)
    assert tasks.drain_inbound_events() == 1  # clears the flag first

    deliver(client, settings, django_capture_on_commit_callbacks, 1, start=1)
    assert drains.call_count == 2
    assert tasks.drain_inbound_events() == 1
    assert InboundEvent.objects.filter(status=Status.IGNORED).count() == 2


@pytest.mark.django_db
def test_an_event_committed_while_a_drain_is_queued_is_left_to_that_drain(
    client, settings, django_capture_on_commit_callbacks, coalesced, published
):
    drains, _, _ = published
    deliver(client, settings, django_capture_on_commit_callbacks, 1)
    deliver(client, settings, django_capture_on_commit_callbacks, 1, start=1)  # flag still set
    assert drains.call_count == 1
    assert (
        tasks.drain_inbound_events() == 2
    )  # the queued drain has not started yet, so it sees both


@pytest.mark.django_db
def test_a_lost_drain_only_delays_the_next_until_the_flag_expires(
    client, settings, django_capture_on_commit_callbacks, coalesced, published
):
    drains, _, _ = published
    deliver(client, settings, django_capture_on_commit_callbacks, 1)
    ttl = coalesced.client.ttl(coalesced.key)
    assert 0 < ttl <= coalesced.ttl  # never a flag that outlives a lost drain

    coalesced.client.delete(coalesced.key)  # the flag expired: the broker lost the drain
    deliver(client, settings, django_capture_on_commit_callbacks, 1, start=1)
    assert drains.call_count == 2
    assert tasks.drain_inbound_events() == 2


@pytest.mark.django_db
def test_an_event_that_fails_in_the_drain_goes_on_in_its_own_task(
    client, settings, django_capture_on_commit_callbacks, coalesced, published
):
    _, _, retries = published
    deliver(client, settings, django_capture_on_commit_callbacks, 3)
    failing = InboundEvent.objects.order_by("pk")[1]

    real = processing.prepare_event

    def prepare(event, payload, received_at):
        if payload["id"] == json.loads(bytes(failing.body))["id"]:
            raise RuntimeError("cannot apply this one")
        return real(event, payload, received_at)

    with patch("webhooks.processing.prepare_event", side_effect=prepare):
        assert tasks.drain_inbound_events() == 3  # the others are not held up by it

    statuses = dict(InboundEvent.objects.values_list("pk", "status"))
    assert statuses.pop(failing.pk) == Status.FAILED
    assert set(statuses.values()) == {Status.IGNORED}
    failing.refresh_from_db()
    assert "cannot apply this one" in failing.last_error
    [call] = retries.call_args_list
    assert call.args == ((failing.pk,),) and call.kwargs == {"countdown": 5}


@pytest.mark.django_db
def test_a_drain_stops_at_its_limit_and_queues_the_next_one(
    client, settings, django_capture_on_commit_callbacks, coalesced, published
):
    drains, _, _ = published
    deliver(client, settings, django_capture_on_commit_callbacks, 3)
    assert drains.call_count == 1

    drained = backlog.drain_received(retry_alone=lambda event_id: None, batch=1, limit=2)
    assert (drained.done, drained.more) == (2, True)
    assert InboundEvent.objects.filter(status=Status.RECEIVED).count() == 1

    with patch.object(backlog, "drain_received", return_value=backlog.Drained(5000, more=True)):
        assert tasks.drain_inbound_events() == 5000
    assert drains.call_count == 2  # the next drain, rather than holding this worker
    assert tasks.drain_inbound_events() == 1
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {Status.IGNORED}


@pytest.mark.django_db
def test_quarantined_and_duplicate_requests_publish_nothing(
    client, settings, django_capture_on_commit_callbacks, coalesced, published
):
    drains, _, _ = published
    body = json.dumps({"event": "test", "id": "0" * 24}).encode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/webhooks/flashfx/", data=body, content_type="application/json")
    assert drains.call_count == 0
    deliver(client, settings, django_capture_on_commit_callbacks, 1)
    coalesced.clear()
    deliver_again = signed_post(
        client, settings, json.dumps({"event": "test", "id": f"{0:024x}"}).encode(), "handoff-0"
    )
    assert deliver_again.json() == {"status": "duplicate"}
    assert drains.call_count == 1


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"FLASHFX_WEBHOOK_HANDOFF": "coalesced"},
            "FLASHFX_WEBHOOK_HANDOFF=coalesced needs REDIS_URL",
        ),
        ({"FLASHFX_WEBHOOK_HANDOFF": "sometimes"}, "must be 'coalesced' or 'per-event'"),
    ],
)
def test_a_hand_off_setting_that_cannot_work_stops_start_up(environ, message):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env |= {"DEBUG": "true", "DJANGO_SETTINGS_MODULE": "backoffice.settings", **environ}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert message in result.stderr


def test_the_default_hand_off_follows_redis(settings):
    handoff = settings.FLASHFX_WEBHOOK_HANDOFF
    assert handoff == ("coalesced" if settings.REDIS_URL else "per-event")


@pytest.mark.django_db(transaction=True)
def test_in_autocommit_the_flag_rides_with_the_answers_metrics_write(
    client, settings, coalesced, published, monkeypatch
):
    """As in production (no request-wide transaction): the row commits inside the view, and the
    drain flag's SET NX goes in the request's one Redis write instead of a round trip of its own."""
    monkeypatch.setattr(metrics, "_redis_client", None)  # connects to this test's REDIS_URL
    drains, _, _ = published
    with patch.object(
        tasks.DrainFlag, "set", side_effect=AssertionError("a round trip of its own")
    ):
        for i in range(3):
            body = json.dumps({"event": "test", "id": f"{i:024x}"}).encode()
            response = signed_post(client, settings, body, f"ride-{i}")
            assert response.json() == {"status": "received"}

    assert drains.call_count == 1  # the first found no drain queued; the others found the flag
    assert coalesced.client.get(coalesced.key) == b"1"
