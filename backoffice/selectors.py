"""Reads for backoffice's own pages (HS-style selectors: `<entity>_<verb>`, keyword-only)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from .models import AuditEvent


@dataclass(frozen=True)
class AuditEventPage:
    events: list[AuditEvent]
    next_before: int | None  # ?before= for the next, older page; None on the last one


def audit_event_list(
    *, action: str = "", actor: str = "", before: int | None = None, size: int
) -> AuditEventPage:
    """Newest first, `size` at a time, older than the event `before` (keyset: never OFFSET on an
    append-only table that only grows)."""
    events = audit_events_filtered(action=action, actor=actor)
    if before is not None:
        events = events.filter(pk__lt=before)
    page = list(events[: size + 1])  # one more tells whether there is an older page
    return AuditEventPage(
        events=page[:size], next_before=page[size - 1].pk if len(page) > size else None
    )


def audit_events_filtered(*, action: str = "", actor: str = "") -> QuerySet[AuditEvent]:
    """Every event the trail's filters select, newest first (the trail and its export)."""
    events = AuditEvent.objects.order_by("-pk")
    if action:
        events = events.filter(action=action)
    if actor:
        events = events.filter(actor=actor)
    return events


def audit_action_list() -> list[str]:
    """Every action recorded so far, once each, for the trail's filter."""
    # order_by(): the model's ordering (-id) would join the DISTINCT and make every row distinct.
    return sorted(AuditEvent.objects.order_by().values_list("action", flat=True).distinct())
