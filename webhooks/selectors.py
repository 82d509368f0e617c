"""What the webhook event pages read: the filtered list (also what an export of it reads), keyset
pages of it, and the quarantine tallies beside quarantined rows.

Pages are keyset pages on (received_at, id), newest first, as the model orders them: an event
arriving while someone reads never shifts the page they are on, and a late page costs what the
first one costs (never OFFSET on a table that only grows).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .models import InboundEvent, QuarantineTally

PAGE_SIZE = 50


@dataclass(frozen=True)
class EventFilters:
    """The list's filters, as the query string gives them (webhooks/forms.py parses it)."""

    status: str = ""  # an InboundEvent.Status value; "" for any
    event: str = ""  # the event type, exactly (e.g. withdrawal_completed)
    entity_id: str = ""  # the payload's id, exactly
    received_from: date | None = None  # whole days in the member's time zone
    received_to: date | None = None
    q: str = ""  # part of a request id or an entity id


def _start_of(day: date) -> datetime:
    """Midnight of `day` in the active (the member's) time zone, as an aware datetime."""
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def inbound_events_filtered(filters: EventFilters) -> QuerySet[InboundEvent]:
    """Every stored webhook request the filters select, newest first."""
    events = InboundEvent.objects.order_by("-received_at", "-id")
    if filters.status:
        events = events.filter(status=filters.status)
    if filters.event:
        events = events.filter(event=filters.event)
    if filters.entity_id:
        events = events.filter(entity_id=filters.entity_id)
    if filters.received_from:
        events = events.filter(received_at__gte=_start_of(filters.received_from))
    if filters.received_to:  # the whole of that day
        events = events.filter(received_at__lt=_start_of(filters.received_to + timedelta(days=1)))
    if filters.q:
        events = events.filter(
            Q(request_id__icontains=filters.q) | Q(entity_id__icontains=filters.q)
        )
    return events


# --- Pages ------------------------------------------------------------------------------------


def _cursor(event: InboundEvent) -> str:
    raw = json.dumps([event.received_at.isoformat(), event.pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _uncursor(token: str) -> tuple[datetime, int] | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        at, pk = json.loads(raw)
        moment = parse_datetime(at) if isinstance(at, str) else None
    except (ValueError, TypeError, binascii.Error):
        return None
    if moment is None or timezone.is_naive(moment) or type(pk) is not int:
        return None
    return moment, pk


@dataclass
class EventPage:
    events: list[InboundEvent]
    next_cursor: str | None  # ?after= for the next, older page; None on the last one
    cursor_valid: bool = True  # False: the cursor given was not one of ours (first page shown)


def inbound_event_page(
    filters: EventFilters, *, after: str = "", size: int = PAGE_SIZE
) -> EventPage:
    """One page of the filtered list, older than the event the cursor `after` names. A cursor
    that does not parse starts over at the first page (and says so)."""
    events = inbound_events_filtered(filters)
    cursor = _uncursor(after) if after else None
    if cursor is not None:
        at, pk = cursor
        events = events.filter(Q(received_at__lt=at) | Q(received_at=at, id__lt=pk))
    page = list(events[: size + 1])  # one more tells whether there is an older page
    more = len(page) > size
    page = page[:size]
    return EventPage(
        events=page,
        next_cursor=_cursor(page[-1]) if more and page else None,
        cursor_valid=not after or cursor is not None,
    )


def event_types() -> list[str]:
    """Every event type received so far, once each, for the filter's suggestions."""
    # order_by(): the model's ordering would join the DISTINCT and make every row distinct.
    return sorted(
        InboundEvent.objects.order_by().exclude(event="").values_list("event", flat=True).distinct()
    )


# --- Quarantine -------------------------------------------------------------------------------


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def quarantine_tallies(events: list[InboundEvent]) -> dict[int, QuarantineTally]:
    """For each quarantined event of `events`, the tally of its source address and minute: how
    many unproven requests came from there that minute, how many were kept, how many dropped.
    One query for the whole page."""
    quarantined = [e for e in events if e.status == InboundEvent.Status.QUARANTINED]
    if not quarantined:
        return {}
    # The tally's minute is read a moment before the row's received_at: across a minute's
    # boundary the row's minute is the next one, so the minute before is looked at as well.
    keys = {
        (e.remote_addr or "", minute)
        for e in quarantined
        for minute in (_minute(e.received_at), _minute(e.received_at) - timedelta(minutes=1))
    }
    match = Q()
    for addr, minute in keys:
        match |= Q(remote_addr=addr, minute=minute)
    tallies = {(t.remote_addr, t.minute): t for t in QuarantineTally.objects.filter(match)}
    found = {}
    for event in quarantined:
        addr, minute = event.remote_addr or "", _minute(event.received_at)
        tally = tallies.get((addr, minute)) or tallies.get((addr, minute - timedelta(minutes=1)))
        if tally is not None:
            found[event.pk] = tally
    return found
