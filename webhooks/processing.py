"""Processing received webhooks: apply each event exactly once, through the mirrors' apply rule.

An event is claimed by a compare-and-set on its status, so a second delivery of the task (late
acks, a redelivered message, a replay) finds it taken and does nothing. Its payload is applied
to the mirror as the provider's version observed at `eventScheduledAt`, with only the fields the
payload carries (§4.6 payloads are partial), so ordering, races and backward moves are decided
in one place (backoffice.mirror). An entity we do not mirror yet is fetched from the API first.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
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
        full = mirror.REMOTES[model](
            wire, observed_at, mirror._sub_client_ids([wire.sub_client_id])
        )
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


def apply_event(event: str, payload: dict, received_at: datetime) -> str:
    """Apply one event's payload to its mirror; returns what happened, in words."""
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
    notes = []
    if not model.objects.filter(flashfx_id=flashfx_id).exists():
        fetched = _fetch(model, flashfx_id)
        APPLY_FETCHED[model](remote=fetched, observed_at=timezone.now())
        notes.append("fetched from FlashFX first")
    if status is None:  # the FX leg: the payment keeps whatever status it has
        status = (
            model.objects.filter(flashfx_id=flashfx_id)
            .values_list("flashfx_status", flat=True)
            .get()
        )
    applied: Applied = apply_remote(model, _remote_from_event(model, status, payload, observed_at))
    changed = f" ({', '.join(applied.changed)})" if applied.changed else ""
    return "; ".join([*notes, f"{model.__name__} {flashfx_id} {applied.outcome}{changed}"])


def _observed_at(payload: dict, received_at: datetime) -> datetime:
    """eventScheduledAt: when FlashFX queued the event, the same on every retry (§5.30)."""
    value = payload.get("eventScheduledAt")
    parsed = types.to_datetime(value) if isinstance(value, str) else None
    return parsed or received_at


def inbound_event_process(*, event_id: int) -> str:
    """RECEIVED or FAILED -> PROCESSING -> PROCESSED / IGNORED; on error FAILED, and re-raised."""
    claimed = InboundEvent.objects.filter(
        pk=event_id, accepted=True, status__in=[Status.RECEIVED, Status.FAILED]
    ).update(status=Status.PROCESSING, attempts=F("attempts") + 1)
    if not claimed:
        return "nothing to do: already taken or finished"
    event = InboundEvent.objects.get(pk=event_id)
    try:
        payload = _payload(event)
        with transaction.atomic():
            outcome = apply_event(event.event, payload, event.received_at)
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
    import json

    return json.loads(bytes(event.body))


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
    and changes nothing. A real replay goes through the same claim as a first delivery.
    """
    events = InboundEvent.objects.filter(accepted=True).order_by("received_at", "id")
    if event_ids is not None:
        events = events.filter(pk__in=event_ids)
    else:
        events = events.filter(status__in=[Status.FAILED, Status.DEAD])
        if since:
            events = events.filter(received_at__gte=since)
        if until:
            events = events.filter(received_at__lte=until)
    results = []
    for event in events.exclude(body=b""):
        if dry_run:
            with transaction.atomic():
                try:
                    outcome = "would be: " + apply_event(
                        event.event, _payload(event), event.received_at
                    )
                except Exception as exc:
                    outcome = f"would fail: {type(exc).__name__}: {exc}"
                transaction.set_rollback(True)
        else:
            InboundEvent.objects.filter(pk=event.pk).update(status=Status.FAILED)  # claimable again
            try:
                outcome = inbound_event_process(event_id=event.pk)
            except Exception as exc:
                outcome = f"failed: {type(exc).__name__}: {exc}"
        results.append(ReplayResult(event.pk, event.event, outcome))
    return results


def sweep_stuck() -> int:
    """Enqueue RECEIVED events older than a minute, and PROCESSING ones a killed worker left."""
    from . import tasks

    now = timezone.now()
    InboundEvent.objects.filter(
        status=Status.PROCESSING, received_at__lt=now - timedelta(minutes=10)
    ).update(
        status=Status.FAILED, last_error="worker stopped while processing; retried by the sweeper"
    )
    stuck = list(
        InboundEvent.objects.filter(
            Q(status=Status.RECEIVED, received_at__lt=now - timedelta(minutes=1))
            | Q(status=Status.FAILED, attempts__lt=1)
        ).values_list("pk", flat=True)[:500]
    )
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

    Sync only ever changes a row that webhooks did not (they got there first otherwise), so a
    sync run's changes are checked once the silence period has passed since it ran: an entity
    with no webhook received from shortly before the run until now is reported (and sync has
    already brought the mirror up to date).
    """
    period = timedelta(
        minutes=minutes if minutes is not None else settings.FLASHFX_WEBHOOK_SILENCE_MINUTES
    )
    now = timezone.now()
    alerts = []
    runs = SyncRun.objects.filter(
        status=SyncRun.Status.SUCCEEDED, silence_checked_at=None, finished_at__lt=now - period
    ).exclude(changed_ids=[])
    for run in runs:
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
