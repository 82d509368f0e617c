"""Webhooks out, as FlashFX sends them (docs/flashfx.md §4).

An event becomes one WebhookDelivery per endpoint, with its body bytes, signature and request id
fixed once, so every retry sends exactly the same request. The clock's webhook thread delivers
them in order of due time: a retrying event does not hold back later ones (§5.29).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from datetime import timedelta
from typing import Any

import httpx
from django.db import transaction
from django.utils import timezone

from . import conf, wire
from .models import Deposit, Payment, SubClient, WebhookAttempt, WebhookDelivery, Withdrawal

log = logging.getLogger(__name__)

RETRY_DELAYS = (6, 60, 600)  # seconds between the 4 attempts (docs/flashfx.md §4.2)
USER_AGENT = "FlashFX"


def sign(body: bytes, secret: str) -> str:
    """Base64 of HMAC-SHA256 over the exact body bytes, keyed by the secret's UTF-8 (§4.4)."""
    return base64.b64encode(
        hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    ).decode()


def _sub_client(sub_client: SubClient | None) -> dict[str, Any] | None:
    if sub_client is None:
        return None
    return {
        "id": sub_client.id,
        "fullName": sub_client.full_name,
        "accountNo": sub_client.account_no,
        "bsb": sub_client.bsb,
        "externalId": sub_client.external_id or None,
    }


def _deposit_payload(deposit: Deposit, event: str) -> dict[str, Any]:
    payload = {
        "amount": deposit.amount,
        "totalFee": deposit.total_fee,
        "currency": deposit.currency,
        "externalReference": deposit.external_reference,
        "clearedAt": wire.timestamp(deposit.cleared_at),
        "statusMessage": deposit.status_message,
        "recipient": deposit.recipient,
        "sender": deposit.sender,
        "subClient": _sub_client(deposit.sub_client),
    }
    if event in ("deposit_refunding", "deposit_refunded"):
        payload |= {
            "refundAmount": deposit.refund_amount,
            "refundReason": deposit.refund_reason,
            "refundedAt": wire.timestamp(deposit.refunded_at),
        }
    return payload


def _withdrawal_payload(withdrawal: Withdrawal, event: str) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "amount": withdrawal.amount,
        "totalFee": withdrawal.total_fee,
        "currency": withdrawal.currency,
        "externalId": withdrawal.external_id,
        "subClient": _sub_client(withdrawal.sub_client),
        "statusMessage": withdrawal.status_message,
    }
    if event == "withdrawal_completed":
        payload["clearedAt"] = wire.timestamp(withdrawal.cleared_at)
    elif event == "withdrawal_refunded":
        recipient = withdrawal.recipient
        payload |= {
            "refundAmount": withdrawal.refund_amount,
            "refundReason": withdrawal.refund_reason,
            "refundedAt": wire.timestamp(withdrawal.refunded_at),
            "clearedAt": wire.timestamp(withdrawal.cleared_at),
            "recipient": {
                "displayName": recipient.get("displayName"),
                "bsb": recipient.get("bsb"),
                "accountNo": recipient.get("accountNo"),
            },
        }
    elif event == "withdrawal_cancelled":
        payload |= {
            "rejectCode": withdrawal.reject_code,
            "rejectedAt": wire.timestamp(withdrawal.rejected_at),
        }
    return payload


def _payment_payload(payment: Payment, event: str) -> dict[str, Any]:
    payload = {
        "fromAmount": payment.from_amount,
        "fromCurrency": payment.from_currency,
        "toAmount": payment.to_amount,
        "toCurrency": payment.to_currency,
        "externalId": payment.external_id,
    }
    if event == "payment_created":
        payload["subClient"] = _sub_client(payment.sub_client)
    return payload


def _sub_client_payload(sub_client: SubClient, event: str) -> dict[str, Any]:
    return {
        "fullName": sub_client.full_name,
        "status": sub_client.status,
        "externalId": sub_client.external_id,
    }


PAYLOADS = {
    Deposit: _deposit_payload,
    Withdrawal: _withdrawal_payload,
    Payment: _payment_payload,
    SubClient: _sub_client_payload,
}


def build_payload(entity: Any, event: str, scheduled_at) -> dict[str, Any]:
    """Flat JSON: event, eventScheduledAt, id, then the event's fields (§4.6).

    Fields with no value are left out rather than sent as null (decision §5.36).
    """
    fields = PAYLOADS[type(entity)](entity, event)
    payload = {"event": event, "eventScheduledAt": wire.timestamp(scheduled_at), "id": entity.id}
    payload.update({k: v for k, v in fields.items() if v not in (None, "")})
    return payload


def emit(entity: Any, event: str) -> list[WebhookDelivery]:
    """Queue the event for the registered endpoint and, if the entity has one, its callbackUri."""
    scheduled_at = timezone.now()
    body = wire.dumps(build_payload(entity, event, scheduled_at))
    config = conf.get_config()
    targets = []
    if config["webhook_url"]:
        targets.append(("regular", config["webhook_url"], config["webhook_secret"]))
    callback_uri = getattr(entity, "callback_uri", "")
    if (
        callback_uri
    ):  # ad hoc webhook (§4.1): its own request id, signed with the ad hoc secret (§5.33)
        targets.append(("adhoc", callback_uri, config["adhoc_webhook_secret"]))
    return [
        _queue(event, entity.id, kind, url, body, secret, scheduled_at)
        for kind, url, secret in targets
    ]


def emit_test_event() -> list[WebhookDelivery]:
    """The "Send Test" button of FlashConnect (decision §5.38)."""
    from .models import new_object_id

    config = conf.get_config()
    if not config["webhook_url"]:
        return []
    scheduled_at = timezone.now()
    entity_id = new_object_id()
    body = wire.dumps(
        {"event": "test", "eventScheduledAt": wire.timestamp(scheduled_at), "id": entity_id}
    )
    return [
        _queue(
            "test",
            entity_id,
            "regular",
            config["webhook_url"],
            body,
            config["webhook_secret"],
            scheduled_at,
        )
    ]


def _queue(event, entity_id, kind, url, body, secret, scheduled_at) -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        event=event,
        kind=kind,
        entity_id=entity_id,
        url=url,
        body=body,
        signature=sign(body, secret),
        event_scheduled_at=scheduled_at,
        next_attempt_at=scheduled_at,
    )


def deliver_due(limit: int = 50) -> int:
    """Send every delivery whose attempt is due; returns how many attempts were made."""
    due = list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=timezone.now()
        ).order_by("next_attempt_at", "id")[:limit]
    )
    sent = 0
    for delivery in due:
        # Claim it first (compare-and-set on the due time), so a tick and the clock thread
        # running at once never send the same attempt twice.
        in_flight_until = timezone.now() + timedelta(
            seconds=conf.get_config()["webhook_timeout_seconds"] + 30
        )
        claimed = WebhookDelivery.objects.filter(
            pk=delivery.pk,
            status=WebhookDelivery.Status.PENDING,
            next_attempt_at=delivery.next_attempt_at,
        ).update(next_attempt_at=in_flight_until)
        if claimed:
            attempt(delivery)
            sent += 1
    return sent


def attempt(delivery: WebhookDelivery) -> None:
    """One POST; 2xx is delivered, anything else (3xx included, §4.2) or no answer is a failure."""
    config = conf.get_config()
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "flashfx-request-id": delivery.request_id,
        "flashfx-signature": delivery.signature,
    }
    started_at = timezone.now()
    began = time.monotonic()
    status_code, response_body, error = None, "", ""
    try:
        # Decision (§5.27, §5.28): redirects are not followed, so a 3xx is a failed attempt;
        # 10 s connect+read timeout by default.
        with httpx.Client(
            timeout=config["webhook_timeout_seconds"], follow_redirects=False
        ) as http:
            response = http.post(delivery.url, content=bytes(delivery.body), headers=headers)
        status_code, response_body = response.status_code, response.text[:2000]
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    latency_ms = int((time.monotonic() - began) * 1000)
    delivered = status_code is not None and 200 <= status_code < 300
    number = delivery.attempts + 1
    delivery.attempts = number
    if delivered:
        delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.DELIVERED, None
    elif number > len(RETRY_DELAYS):
        delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
    else:
        wait = RETRY_DELAYS[number - 1] * config["webhook_retry_scale"]
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=wait)
    with transaction.atomic():
        updated = WebhookDelivery.objects.filter(pk=delivery.pk).update(
            attempts=number, status=delivery.status, next_attempt_at=delivery.next_attempt_at
        )
        if updated:  # 0 when a reset wiped the delivery while it was in flight
            WebhookAttempt.objects.create(
                delivery=delivery,
                number=number,
                started_at=started_at,
                status_code=status_code,
                latency_ms=latency_ms,
                response_body=response_body,
                error=error,
            )
    log.info(
        "webhook %s %s attempt %d to %s: %s in %d ms%s",
        delivery.event,
        delivery.request_id,
        number,
        delivery.url,
        status_code if status_code is not None else "no answer",
        latency_ms,
        f" ({error})" if error else "",
    )


def serialize_delivery(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "requestId": delivery.request_id,
        "event": delivery.event,
        "kind": delivery.kind,
        "entityId": delivery.entity_id,
        "url": delivery.url,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "nextAttemptAt": wire.timestamp(delivery.next_attempt_at),
        "eventScheduledAt": wire.timestamp(delivery.event_scheduled_at),
        "body": bytes(delivery.body).decode("utf-8"),
        "signature": delivery.signature,
        "attemptLog": [
            {
                "number": a.number,
                "startedAt": wire.timestamp(a.started_at),
                "statusCode": a.status_code,
                "latencyMs": a.latency_ms,
                "responseBody": a.response_body,
                "error": a.error,
            }
            for a in delivery.attempt_log.all()
        ],
    }
