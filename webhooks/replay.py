"""Replaying stored webhook events: a dry run that changes nothing, or a real one through the
same claim as a first delivery (the staff pages, the admin's actions and
`manage.py replay_webhooks`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from backoffice import audit

from .models import InboundEvent
from .processing import apply_prepared, inbound_event_process, prepare_event, stored_payload

Status = InboundEvent.Status
PERMISSION = "webhooks.change_inboundevent"  # replay writes to the mirrors
REPLAYED = "webhook.replayed"  # the audit action of a member's real replay


@dataclass
class ReplayResult:
    event_id: int
    event: str
    outcome: str


def replay(
    *,
    event_ids: list[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    dry_run: bool = True,
) -> list[ReplayResult]:
    """Apply stored events again: the given ones, or every FAILED/DEAD one received in [since, until].

    A dry run applies inside a transaction that is rolled back, so it shows what would change
    and changes nothing (FlashFX is only read). A real replay goes through the same claim as a
    first delivery, so an event is never applied twice at once; one that fails again is dead
    again (a FAILED one keeps its pending Celery retry). Quarantined and conflicting requests,
    pruned bodies and events being processed right now are reported, never replayed.
    """
    events = InboundEvent.objects.order_by("received_at", "id")
    if event_ids is not None:
        events = events.filter(pk__in=event_ids)
    else:
        events = events.filter(accepted=True, status__in=[Status.FAILED, Status.DEAD])
        if since:
            events = events.filter(received_at__gte=since)
        if until:
            events = events.filter(received_at__lte=until)
    results = []
    for event in events:
        if not event.accepted:
            outcome = f"skipped: {event.status} ({event.reason}), never processed"
        elif event.body_pruned_at is not None or not event.body:
            outcome = "skipped: its body was pruned after the retention period"
        elif event.status == Status.PROCESSING:
            outcome = "skipped: being processed right now"
        elif dry_run:
            outcome = _dry_run(event)
        else:
            outcome = _replay_one(event)
        results.append(ReplayResult(event.pk, event.event, outcome))
    return results


def _dry_run(event: InboundEvent) -> str:
    try:
        prepared = prepare_event(event.event, stored_payload(event), event.received_at)
        if isinstance(prepared, str):
            return "would be: " + prepared
        with transaction.atomic():
            outcome = "would be: " + apply_prepared(prepared)
            transaction.set_rollback(True)
        return outcome
    except Exception as exc:
        return f"would fail: {type(exc).__name__}: {exc}"


def _replay_one(event: InboundEvent) -> str:
    # Claimable again, unless a worker took it meanwhile (then the claim below finds it taken).
    InboundEvent.objects.filter(pk=event.pk).exclude(status=Status.PROCESSING).update(
        status=Status.FAILED
    )
    try:
        return inbound_event_process(event_id=event.pk)
    except Exception as exc:
        if event.status != Status.FAILED:  # no Celery retry is pending for it: back to a person
            InboundEvent.objects.filter(pk=event.pk, status=Status.FAILED).update(
                status=Status.DEAD
            )
        return f"failed: {type(exc).__name__}: {exc}"


def events_replay(
    *,
    event_ids: list[int],
    actor: Any,
    request: HttpRequest | None = None,
    seen: dict[int, str] | None = None,
) -> list[ReplayResult]:
    """A member's real replay of these events, one at a time, each followed by its audit row
    (the event, its status before and after, the outcome, and the whole selection).

    `seen`: each event's status when the member's dry run looked at it. An event whose status
    has moved since (replayed meanwhile, by a double submit or by someone else, or processed by
    a retry) is skipped and says so: the member decided on what the dry run showed.

    One event at a time and no transaction around them: processing may fetch from FlashFX,
    which must never happen while we hold a database lock (webhooks/processing.py); an
    event's audit row is written as soon as its replay has ended, whatever the next one does.
    Ids that name no event are reported as such.
    """
    results = []
    known = InboundEvent.objects.in_bulk(event_ids)
    for event_id in event_ids:
        event = known.get(event_id)
        if event is None:
            results.append(ReplayResult(event_id, "", "skipped: no such event"))
            continue
        if seen is not None and seen.get(event_id) != event.status:
            was = seen.get(event_id, "not in the dry run")
            outcome = f"skipped: its status changed since the dry run ({was} -> {event.status})"
            results.append(ReplayResult(event_id, event.event, outcome))
            continue
        before = {"status": event.status, "attempts": event.attempts}
        [result] = replay(event_ids=[event_id], dry_run=False)
        event.refresh_from_db(fields=["status", "attempts"])
        audit.record(
            REPLAYED,
            actor=actor,
            request=request,
            obj=event,
            before=before,
            after={"status": event.status, "attempts": event.attempts},
            details={
                "event_id": event.pk,
                "request_id": event.request_id,
                "event": event.event,
                "outcome": result.outcome,
                "selection": event_ids,
            },
        )
        results.append(result)
    return results
