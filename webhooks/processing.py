"""Processing received webhooks: apply each event exactly once, through the mirrors' apply rule.

An event is claimed by a compare-and-set on its status, so a second delivery of the task (late
acks, a redelivered message, a replay) finds it taken and does nothing. Its payload is applied
to the mirror as the provider's version observed at `eventScheduledAt`, with only the fields the
payload carries (§4.6 payloads are partial), so ordering, races and backward moves are decided
in one place (backoffice.mirror). An entity we do not mirror yet is fetched from the API first,
before any transaction is opened: an HTTP call never runs while we hold a database lock (on
SQLite that lock is the whole database, and the receiver would answer 503 meanwhile).

`processed_at` is when processing last ran: set when an attempt starts (the claim), and again
when it ends well. The sweeper uses it to tell a worker that died mid-attempt from a slow one.
"""

from __future__ import annotations

import json
import logging
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from backoffice.mirror import Applied, Remote, apply_remote
from flashfx import types
from parties import services as parties_services
from parties.models import SubClient
from payments.models import Deposit, Payment, SyncRun, Withdrawal
from payments.services import mirror

from .models import InboundEvent

log = logging.getLogger(__name__)
Status = InboundEvent.Status
RETRYABLE = (Exception,)  # any failure is retried with backoff, then dead-lettered
RECEIVED_GRACE = timedelta(minutes=1)  # a RECEIVED event older than this was never enqueued
PROCESSING_TIMEOUT = timedelta(minutes=10)  # an attempt running longer than this has died
# Longer than the task's longest retry countdown (600 s): a FAILED event whose last attempt is
# older than this has lost its retry (e.g. the broker was down when the retry was scheduled).
RETRY_LOST_AFTER = timedelta(minutes=15)

# Event name -> (mirror, the status it means); None keeps the current one (the FX leg, §3.6.3).
EVENTS: dict[str, tuple[type, str | None]] = {
    "deposit_initiated": (Deposit, "INITIALISED"),
    "deposit_reviewing": (Deposit, "REVIEWING"),
    "deposit_cleared": (Deposit, "CONFIRMED"),
    "deposit_cancelled": (Deposit, "CANCELLED"),
    "deposit_refunding": (Deposit, "REFUNDING"),
    "deposit_refunded": (Deposit, "REFUNDED"),
    "withdrawal_initiated": (Withdrawal, "INITIALISED"),
    "withdrawal_reviewing": (Withdrawal, "REVIEWING"),
    "withdrawal_pending": (Withdrawal, "PENDING"),
    "withdrawal_completed": (Withdrawal, "CONFIRMED"),
    "withdrawal_failed": (Withdrawal, "FAILED"),
    "withdrawal_refunded": (Withdrawal, "REFUNDED"),
    "withdrawal_cancelled": (Withdrawal, "CANCELLED"),
    "payment_created": (Payment, "OPEN"),
    "currency_converted": (Payment, None),
    "payment_complete": (Payment, "CLOSED"),
    "payment_failed": (Payment, "FAILED"),
    "payment_cancelled": (Payment, "CANCELLED"),
    **{f"subclient_{s.lower()}": (SubClient, s) for s in SubClient.STATUS_ORDER.ranks},
}
# Documented events of things we do not mirror (yet): stored, marked ignored (§4.6).
NOT_MIRRORED = ("conversion_", "ams_", "rfi_")

# Payload key -> the mirror columns it feeds; a payload only moves the columns it carries.
SENDER_COLUMNS = ("sender_account_name", "sender_bank_name", "sender_bsb", "sender_account_no")
SUB_CLIENT_COLUMNS = ("sub_client_id", "sub_client_flashfx_id")
COLUMNS: dict[type, dict[str, tuple[str, ...]]] = {
    Deposit: {
        "amount": ("amount",),
        "totalFee": ("total_fee",),
        "currency": ("currency",),
        "externalReference": ("external_reference",),
        "clearedAt": ("cleared_at",),
        "statusMessage": ("status_message",),
        "sender": SENDER_COLUMNS,
        "subClient": SUB_CLIENT_COLUMNS,
        "refundAmount": ("refund_amount",),
        "refundReason": ("refund_reason",),
        "refundedAt": ("refunded_at",),
    },
    Withdrawal: {
        "amount": ("amount",),
        "totalFee": ("total_fee",),
        "currency": ("currency",),
        "externalId": ("external_id",),
        "subClient": SUB_CLIENT_COLUMNS,
        "statusMessage": ("status_message",),
        "clearedAt": ("cleared_at",),
        "refundAmount": ("refund_amount",),
        "refundReason": ("refund_reason",),
        "refundedAt": ("refunded_at",),
        "rejectCode": ("reject_code",),
        "rejectedAt": ("rejected_at",),
        "recipient": ("recipient_name", "recipient_bsb", "recipient_account_no"),
    },
    Payment: {
        "fromAmount": ("from_amount",),
        "fromCurrency": ("from_currency",),
        "toAmount": ("to_amount",),
        "toCurrency": ("to_currency",),
        "externalId": ("external_id",),
        "subClient": SUB_CLIENT_COLUMNS,
    },
    SubClient: {"fullName": ("full_name",), "externalId": ("external_id",)},
}
WIRE = {
    Deposit: types.Deposit,
    Withdrawal: types.Withdrawal,
    Payment: types.Payment,
    SubClient: types.SubClient,
}


def _remote_from_event(model: type, status: str, payload: dict, observed_at: datetime) -> Remote:
    """The payload as a partial provider version: only the columns its keys feed."""
    wire = WIRE[model].from_wire({**payload, "status": status})
    if model is SubClient:
        full = parties_services.sub_client_remote(wire, observed_at)
    else:
        full = mirror.transfer_remote(model, wire, observed_at)
    wanted = {"flashfx_status", "raw"} | {
        c for key in payload if key in COLUMNS[model] for c in COLUMNS[model][key]
    }
    return Remote(
        flashfx_id=full.flashfx_id,
        fields={k: v for k, v in full.fields.items() if k in wanted},
        observed_at=observed_at,
        status=status,
        unknown=full.unknown,
    )


def _fetch(model: type, flashfx_id: str):
    """The entity as FlashFX has it now (for one we do not mirror yet)."""
    from backoffice.flashfx import flashfx_client

    client = flashfx_client()
    found = {
        Deposit: client.deposit,
        Withdrawal: client.withdrawal,
        Payment: client.payment,
        SubClient: client.sub_client,
    }[model](flashfx_id)
    if found is None:
        raise LookupError(f"FlashFX does not know {model.__name__} {flashfx_id}")
    return found


APPLY_FETCHED = {
    Deposit: mirror.deposit_apply_remote,
    Withdrawal: mirror.withdrawal_apply_remote,
    Payment: mirror.payment_apply_remote,
    SubClient: parties_services.sub_client_apply_remote,
}


@dataclass(frozen=True)
class Prepared:
    """An event ready to apply: everything that needs FlashFX has been asked already."""

    model: type
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
    if event not in EVENTS:
        log.warning("webhook event type %r is unknown; stored, not applied", event)
        return f"ignored: unknown event type {event!r}"
    model, status = EVENTS[event]
    flashfx_id = str(payload["id"])
    observed_at = _observed_at(payload, received_at)
    if model.objects.filter(flashfx_id=flashfx_id).exists():
        return Prepared(model, status, flashfx_id, payload, observed_at)
    # Taken before the read, like sync does: the answer is at least this fresh. Taken after,
    # an event queued while the request was in flight would look older than the answer and
    # be dropped as stale, although the answer does not hold it.
    fetched_at = timezone.now()
    fetched = _fetch(model, flashfx_id)
    return Prepared(model, status, flashfx_id, payload, observed_at, fetched, fetched_at)


def apply_prepared(prepared: Prepared) -> str:
    """Write a prepared event to its mirror (no HTTP here); returns what happened, in words."""
    model, flashfx_id = prepared.model, prepared.flashfx_id
    notes = []
    if prepared.fetched is not None:
        # Through the rule as well: a worker that mirrored it meanwhile is not overwritten.
        APPLY_FETCHED[model](remote=prepared.fetched, observed_at=prepared.fetched_at)
        notes.append("fetched from FlashFX first")
    status = prepared.status
    if status is None:  # the FX leg: the payment keeps whatever status it has
        status = (
            model.objects.filter(flashfx_id=flashfx_id)
            .values_list("flashfx_status", flat=True)
            .get()
        )
    remote = _remote_from_event(model, status, prepared.payload, prepared.observed_at)
    applied: Applied = apply_remote(model, remote)
    changed = f" ({', '.join(applied.changed)})" if applied.changed else ""
    return "; ".join([*notes, f"{model.__name__} {flashfx_id} {applied.outcome}{changed}"])


def apply_event(event: str, payload: dict, received_at: datetime) -> str:
    """Apply one event's payload to its mirror; returns what happened, in words."""
    prepared = prepare_event(event, payload, received_at)
    return prepared if isinstance(prepared, str) else apply_prepared(prepared)


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
        prepared = prepare_event(event.event, _payload(event), event.received_at)
        with transaction.atomic():
            outcome = prepared if isinstance(prepared, str) else apply_prepared(prepared)
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


def _payload(event: InboundEvent) -> dict:
    # Amounts as the exact Decimals written on the wire: flashfx.types refuses floats.
    return json.loads(bytes(event.body), parse_float=Decimal)


def inbound_event_dead(*, event_id: int) -> None:
    """Retries exhausted: keep it, with its last exception, for a person (dead letter)."""
    InboundEvent.objects.filter(pk=event_id, status=Status.FAILED).update(status=Status.DEAD)
    log.error("webhook event %s is dead after its retries; see its last error", event_id)


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
        prepared = prepare_event(event.event, _payload(event), event.received_at)
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


def drain_received(*, batch: int = 100, limit: int = 5000) -> int:
    """Process RECEIVED events in arrival order until none is left (FLASHFX_WEBHOOK_HANDOFF
    "coalesced"). Clears the drain flag first, so that a request committing after that point
    queues the next drain. An event that fails goes on in its own task, with its retries and
    dead letter, exactly as with the per-event hand-off; past `limit` another drain is queued
    rather than holding this worker. Safe beside other drains: the claim applies each once."""
    from . import receiving, tasks

    receiving.drain_flag().clear()
    done = 0
    while done < limit:
        waiting = list(
            InboundEvent.objects.filter(status=Status.RECEIVED, accepted=True)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch]
        )
        if not waiting:
            return done
        for event_id in waiting:
            try:
                inbound_event_process(event_id=event_id)
            except RETRYABLE:  # recorded FAILED with its traceback by inbound_event_process
                tasks.process_inbound_event.apply_async((event_id,), countdown=5)
            done += 1
    tasks.drain_inbound_events.delay()
    return done


def sweep_stuck() -> int:
    """Enqueue RECEIVED events the broker lost, PROCESSING ones a killed worker left (reset to
    FAILED first), and FAILED ones whose retry was lost. Safe: the claim applies each once."""
    from . import tasks

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
    stuck = dead_workers + waiting
    for event_id in stuck:
        tasks.process_inbound_event.delay(event_id)
    return len(stuck)


def prune_bodies(*, days: int | None = None) -> int:
    """Drop the raw bodies of finished events after the retention period; keep the request ids
    (replay protection), the event, entity, digest, size and outcome."""
    cutoff = timezone.now() - timedelta(
        days=days if days is not None else settings.FLASHFX_WEBHOOK_RETENTION_DAYS
    )
    return InboundEvent.objects.filter(
        status__in=[Status.PROCESSED, Status.IGNORED], received_at__lt=cutoff, body_pruned_at=None
    ).update(body=b"", headers={}, body_pruned_at=timezone.now())


def silence_alerts(*, minutes: int | None = None) -> list[dict[str, Any]]:
    """Changes sync found that no webhook reported: FlashFX gave up, or our endpoint is unreachable.

    A sync run's changes are checked once the silence period has passed since it ran: an
    entity with no webhook received from shortly before the run until now is reported (and
    sync has already brought the mirror up to date). Only incremental runs say anything about
    webhooks: a backfill (`full`, the very first sync among them) finds history that was never
    meant to arrive by webhook, so it is marked checked without an alert.
    """
    period = timedelta(
        minutes=minutes if minutes is not None else settings.FLASHFX_WEBHOOK_SILENCE_MINUTES
    )
    now = timezone.now()
    due = SyncRun.objects.filter(
        status=SyncRun.Status.SUCCEEDED, silence_checked_at=None, finished_at__lt=now - period
    )
    # Nothing to check: marked once, so that the due list does not grow with every run.
    due.filter(Q(mode="full") | Q(changed_ids=[])).update(silence_checked_at=now, silent_ids=[])
    alerts = []
    for run in due.exclude(mode="full").exclude(changed_ids=[]):
        heard = set(
            InboundEvent.objects.filter(
                accepted=True,
                entity_id__in=run.changed_ids,
                received_at__gte=run.started_at - period,
            ).values_list("entity_id", flat=True)
        )
        silent = [i for i in run.changed_ids if i not in heard]
        if silent:
            log.error(
                "ALERT webhook silence: sync %s found %d change(s) of %s that no webhook reported: %s",
                run.pk,
                len(silent),
                run.entity,
                silent[:20],
            )
            alerts.append({"sync_run": run.pk, "entity": run.entity, "flashfx_ids": silent})
        SyncRun.objects.filter(pk=run.pk).update(silence_checked_at=now, silent_ids=silent)
    return alerts
