"""Processing a received webhook: apply each event exactly once, through the mirrors' apply rule.

An event is claimed by a compare-and-set on its status, so a second delivery of the task (late
acks, a redelivered message, a replay) finds it taken and does nothing. Its payload is applied
to the mirror as the provider's version observed at `eventScheduledAt`, with only the columns
the payload carries (docs/flashfx.md §4.6: payloads are partial), so ordering, races and
backward moves are decided in one place (mirrors/apply.py). Which mirror an event feeds, and
which columns each payload key feeds, come from the mirrors' registry (each app's mirrors.py).
An entity we do not mirror yet is fetched from the API first, before any transaction is opened:
an HTTP call never runs while we hold a database lock (on SQLite that lock is the whole
database, and the receiver would answer 503 meanwhile).

`processed_at` is when processing last ran: set when an attempt starts (the claim), and again
when it ends well. The sweeper (webhooks/backlog.py) uses it to tell a worker that died
mid-attempt from a slow one.
"""

from __future__ import annotations

import json
import logging
import traceback
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from flashfx import types
from mirrors.apply import Applied, Remote
from mirrors.client import flashfx_client
from mirrors.registry import MirrorSpec, registry

from .models import InboundEvent

log = logging.getLogger(__name__)
Status = InboundEvent.Status
RETRYABLE = (Exception,)  # any failure is retried with backoff, then dead-lettered

# Documented events of things we do not mirror (yet): stored, marked ignored (§4.6).
NOT_MIRRORED = ("conversion_", "ams_", "rfi_")


def _remote_from_event(
    spec: MirrorSpec, status: str, payload: dict, observed_at: datetime
) -> Remote:
    """The payload as a partial provider version: only the columns its keys feed."""
    wire = spec.wire.from_wire({**payload, "status": status})
    full = spec.remote_of(wire, observed_at)
    wanted = {"flashfx_status", "raw"} | {
        c for key in payload if key in spec.event_columns for c in spec.event_columns[key]
    }
    return Remote(
        flashfx_id=full.flashfx_id,
        fields={k: v for k, v in full.fields.items() if k in wanted},
        observed_at=observed_at,
        status=status,
        unknown=full.unknown,
    )


def _fetch(spec: MirrorSpec, flashfx_id: str):
    """The entity as FlashFX has it now (for one we do not mirror yet)."""
    found = spec.fetch_one(flashfx_client(), flashfx_id)
    if found is None:
        raise LookupError(f"FlashFX does not know {spec.model.__name__} {flashfx_id}")
    return found


@dataclass(frozen=True)
class Prepared:
    """An event ready to apply: everything that needs FlashFX has been asked already."""

    spec: MirrorSpec
    status: str | None  # None: keep the mirror's (the FX leg)
    flashfx_id: str
    payload: dict
    observed_at: datetime
    fetched: Any = None  # FlashFX's version, when we did not mirror the entity yet
    fetched_at: datetime | None = None


def prepare_event(event: str, payload: dict, received_at: datetime) -> Prepared | str:
    """What applying the event needs, or the words for an event with nothing to apply.

    Reads the database and, for an entity not mirrored yet, FlashFX: call it outside any
    transaction, so that no lock is held across the HTTP call.
    """
    if event == "test":
        return "ignored: test event"
    if event.startswith(NOT_MIRRORED):
        return f"ignored: {event.split('_')[0]} events are not mirrored"
    target = registry.for_event(event)
    if target is None:
        log.warning("webhook event type %r is unknown; stored, not applied", event)
        return f"ignored: unknown event type {event!r}"
    spec, status = target
    flashfx_id = str(payload["id"])
    observed_at = _observed_at(payload, received_at)
    if spec.model.objects.flashfx_id(flashfx_id).exists():
        return Prepared(spec, status, flashfx_id, payload, observed_at)
    # Taken before the read, like sync does: the answer is at least this fresh. Taken after,
    # an event queued while the request was in flight would look older than the answer and
    # be dropped as stale, although the answer does not hold it.
    fetched_at = timezone.now()
    fetched = _fetch(spec, flashfx_id)
    return Prepared(spec, status, flashfx_id, payload, observed_at, fetched, fetched_at)


def apply_prepared(prepared: Prepared, *, source: str = "webhook") -> str:
    """Write a prepared event to its mirror (no HTTP here); returns what happened, in words."""
    spec, flashfx_id = prepared.spec, prepared.flashfx_id
    model = spec.model
    notes = []
    if prepared.fetched is not None:
        # Through the rule as well: a worker that mirrored it meanwhile is not overwritten.
        spec.apply(prepared.fetched, observed_at=prepared.fetched_at, source=f"{source} (fetched)")
        notes.append("fetched from FlashFX first")
    status = prepared.status
    if status is None:  # the FX leg: the payment keeps whatever status it has
        status = model.objects.flashfx_id(flashfx_id).values_list("flashfx_status", flat=True).get()
    remote = _remote_from_event(spec, status, prepared.payload, prepared.observed_at)
    applied: Applied = spec.apply_version(remote, source=source)
    changed = f" ({', '.join(applied.changed)})" if applied.changed else ""
    return "; ".join([*notes, f"{model.__name__} {flashfx_id} {applied.outcome}{changed}"])


def _observed_at(payload: dict, received_at: datetime) -> datetime:
    """eventScheduledAt: when FlashFX queued the event, the same on every retry (§5.30).

    Absent (before 2026-02-26) or unreadable, the time we first received it stands in: a
    malformed timestamp must not dead-letter an otherwise good event.
    """
    value = payload.get("eventScheduledAt")
    try:
        parsed = types.to_datetime(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    return parsed or received_at


def inbound_event_process(*, event_id: int) -> str:
    """RECEIVED or FAILED -> PROCESSING -> PROCESSED / IGNORED; on error FAILED, and re-raised."""
    claimed = InboundEvent.objects.filter(
        pk=event_id, accepted=True, status__in=[Status.RECEIVED, Status.FAILED]
    ).update(status=Status.PROCESSING, attempts=F("attempts") + 1, processed_at=timezone.now())
    if not claimed:
        return "nothing to do: already taken or finished"
    event = InboundEvent.objects.get(pk=event_id)
    try:
        prepared = prepare_event(event.event, stored_payload(event), event.received_at)
        with transaction.atomic():
            outcome = (
                prepared
                if isinstance(prepared, str)
                else apply_prepared(prepared, source=f"webhook #{event_id}")
            )
            status = Status.IGNORED if outcome.startswith("ignored") else Status.PROCESSED
            InboundEvent.objects.filter(pk=event_id).update(
                status=status, outcome=outcome[:200], processed_at=timezone.now(), last_error=""
            )
    except Exception:
        InboundEvent.objects.filter(pk=event_id).update(
            status=Status.FAILED, last_error=traceback.format_exc()
        )
        log.exception("webhook event %s (%s) failed", event_id, event.event)
        raise
    return outcome


def stored_payload(event: InboundEvent) -> dict:
    # Amounts as the exact Decimals written on the wire: flashfx.types refuses floats.
    return json.loads(bytes(event.body), parse_float=Decimal)


def inbound_event_dead(*, event_id: int) -> None:
    """Retries exhausted: keep it, with its last exception, for a person (dead letter)."""
    InboundEvent.objects.filter(pk=event_id, status=Status.FAILED).update(status=Status.DEAD)
    log.error("webhook event %s is dead after its retries; see its last error", event_id)
