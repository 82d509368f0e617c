"""The stored events that wait or linger: drain the received ones, sweep up the stuck ones, and
prune old bodies. Nothing here enqueues: webhooks/tasks.py does, with what these return."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .models import InboundEvent
from .processing import RETRYABLE, inbound_event_process

Status = InboundEvent.Status
RECEIVED_GRACE = timedelta(minutes=1)  # a RECEIVED event older than this was never enqueued
PROCESSING_TIMEOUT = timedelta(minutes=10)  # an attempt running longer than this has died
# Longer than the task's longest retry countdown (600 s): a FAILED event whose last attempt is
# older than this has lost its retry (e.g. the broker was down when the retry was scheduled).
RETRY_LOST_AFTER = timedelta(minutes=15)


@dataclass(frozen=True)
class Drained:
    done: int
    more: bool  # stopped at the limit with events still waiting: another drain should follow


def drain_received(
    *, retry_alone: Callable[[int], None], batch: int = 100, limit: int = 5000
) -> Drained:
    """Process RECEIVED events in arrival order until none is left (FLASHFX_WEBHOOK_HANDOFF
    "coalesced"). An event that fails is handed to `retry_alone`, to go on in its own task with
    its retries and dead letter, exactly as with the per-event hand-off; past `limit` the drain
    stops, so that the next one does not hold this worker. Safe beside other drains: the claim
    applies each once."""
    done = 0
    while done < limit:
        waiting = list(
            InboundEvent.objects.filter(status=Status.RECEIVED, accepted=True)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch]
        )
        if not waiting:
            return Drained(done, more=False)
        for event_id in waiting:
            try:
                inbound_event_process(event_id=event_id)
            except RETRYABLE:  # recorded FAILED with its traceback by inbound_event_process
                retry_alone(event_id)
            done += 1
    return Drained(done, more=True)


def sweep_stuck() -> list[int]:
    """The events to enqueue again: RECEIVED ones the broker lost, PROCESSING ones a killed
    worker left (reset to FAILED first), and FAILED ones whose retry was lost. Safe: the claim
    applies each once."""
    now = timezone.now()
    died = now - PROCESSING_TIMEOUT
    # How long the attempt has run, not how old the event is: a replay of last week's event
    # is PROCESSING for seconds, and resetting it then would apply it twice at once.
    in_attempt_since = Q(processed_at__lt=died) | Q(processed_at=None, received_at__lt=died)
    dead_workers = list(
        InboundEvent.objects.filter(in_attempt_since, status=Status.PROCESSING).values_list(
            "pk", flat=True
        )[:500]
    )
    InboundEvent.objects.filter(
        in_attempt_since, pk__in=dead_workers, status=Status.PROCESSING
    ).update(
        status=Status.FAILED, last_error="worker stopped while processing; retried by the sweeper"
    )
    waiting = list(
        InboundEvent.objects.filter(
            Q(status=Status.RECEIVED, received_at__lt=now - RECEIVED_GRACE)
            | Q(status=Status.FAILED, processed_at__lt=now - RETRY_LOST_AFTER)
        )
        .exclude(pk__in=dead_workers)
        .values_list("pk", flat=True)[:500]
    )
    return dead_workers + waiting


def prune_bodies(*, days: int | None = None) -> int:
    """Drop the raw bodies of finished events after the retention period; keep the request ids
    (replay protection), the event, entity, digest, size and outcome."""
    cutoff = timezone.now() - timedelta(
        days=days if days is not None else settings.FLASHFX_WEBHOOK_RETENTION_DAYS
    )
    return InboundEvent.objects.filter(
        status__in=[Status.PROCESSED, Status.IGNORED], received_at__lt=cutoff, body_pruned_at=None
    ).update(body=b"", headers={}, body_pruned_at=timezone.now())
