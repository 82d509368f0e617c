"""Receiving a FlashFX webhook: verify, keep, deduplicate, answer (docs/flashfx.md §4.2-§4.4).

The hot path is one HMAC, one JSON parse and one INSERT ... ON CONFLICT DO NOTHING RETURNING:
the row is written whatever the verdict (accepted, or quarantined with its reason), and a
repeat of a known request id costs no exception (docs/measurements.md: the IntegrityError path is slow).
A request that does not prove to come from FlashFX (UNPROVEN) is counted per source address and
minute first; past FLASHFX_WEBHOOK_QUARANTINE_PER_MINUTE it is answered the same but not stored,
and what is stored of it is the first FLASHFX_WEBHOOK_QUARANTINE_BODY_BYTES of its body.
Processing happens later, in a worker (webhooks/tasks.py hands it over), after the row is committed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from backoffice.http import client_ip as forwarded_client_ip
from mirrors.insert import bound_cursor, placeholders

from . import tasks
from .models import InboundEvent, QuarantineTally

log = logging.getLogger(__name__)

Status, Reason = InboundEvent.Status, InboundEvent.Reason
KEPT_HEADERS = (
    "content-type",
    "content-length",
    "user-agent",
    "flashfx-request-id",
    "flashfx-signature",
    "x-forwarded-for",
)
REQUEST_ID = re.compile(r"[A-Za-z0-9_.:-]{1,200}")  # format undocumented (§5.31); ours is 24-hex
MAX_JSON_DEPTH = 32  # FlashFX payloads are flat with small objects (§4.6)
MAX_BODY_SIZE = (
    2**31 - 1
)  # what body_size (a PostgreSQL integer) can hold; a declared size may not fit
# Published source addresses (§4.2), for FLASHFX_WEBHOOK_ALLOWED_IPS=uat or =production.
PUBLISHED_IPS = {
    "uat": ("52.64.185.170/32", "13.210.129.208/32"),
    "production": ("52.62.138.234/32", "52.65.3.195/32"),
}


@dataclass(frozen=True)
class Receipt:
    """What to answer: the HTTP status, and the stored row."""

    status_code: int
    event_id: int | None
    detail: str


def signature_valid(body: bytes, header: str) -> bool:
    """Base64 HMAC-SHA256 of the raw body (§4.4), against the current and, while rotating, the previous secret."""
    for secret in (settings.FLASHFX_WEBHOOK_SECRET, settings.FLASHFX_WEBHOOK_SECRET_PREVIOUS):
        if secret:
            expected = base64.b64encode(
                hmac.new(secret.encode(), body, hashlib.sha256).digest()
            ).decode()
            if hmac.compare_digest(expected.encode(), header.encode()):
                return True
    return False


@cache
def allowed_networks() -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] | None:
    """None when the allow-list is off (the embedded default)."""
    entries = settings.FLASHFX_WEBHOOK_ALLOWED_IPS
    if not entries:
        return None
    networks = []
    for entry in entries:
        for cidr in PUBLISHED_IPS.get(entry.lower(), (entry,)):
            networks.append(ipaddress.ip_network(cidr, strict=False))
    return tuple(networks)


def client_ip(meta: dict[str, Any]) -> str | None:
    """The sender's address, through FLASHFX_WEBHOOK_TRUSTED_PROXIES of our own proxies."""
    return forwarded_client_ip(meta, trusted_proxies=settings.FLASHFX_WEBHOOK_TRUSTED_PROXIES)


def _text(value: str, limit: int | None = None) -> str:
    """A string any database text column takes: PostgreSQL refuses NUL, and a lone surrogate
    (JSON's "\\ud800") cannot be encoded as UTF-8. The raw body keeps the exact bytes."""
    if not value.isascii() or "\x00" in value:
        value = value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")
    return value[:limit]


def _kept_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: _text(headers[k]) for k in KEPT_HEADERS if k in headers}


def _depth(value: Any, limit: int) -> int:
    """Nesting depth, stopping early past `limit`."""
    depth, level = 0, [value]
    while level and depth <= limit:
        depth += 1
        level = [
            c
            for v in level
            for c in (v.values() if isinstance(v, dict) else v if isinstance(v, list) else ())
            if isinstance(c, dict | list)
        ]
    return depth


def _verdict(
    body: bytes, headers: dict[str, str], remote_addr: str | None
) -> tuple[str, dict | None]:
    """The quarantine reason, or "" and the payload for an acceptable event."""
    networks = allowed_networks()
    if networks is not None and (
        remote_addr is None or not any(ipaddress.ip_address(remote_addr) in n for n in networks)
    ):
        return Reason.IP_NOT_ALLOWED, None
    signature = headers.get("flashfx-signature", "")
    if not signature:
        return Reason.MISSING_SIGNATURE, None
    if not signature_valid(body, signature):
        return Reason.BAD_SIGNATURE, None
    request_id = headers.get("flashfx-request-id", "")
    if not request_id:
        return Reason.MISSING_REQUEST_ID, None
    if not REQUEST_ID.fullmatch(request_id):  # e.g. two headers joined into "a, b"
        return Reason.MALFORMED_REQUEST_ID, None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Reason.NOT_UTF8, None
    try:
        payload = json.loads(text)
    except RecursionError:
        return Reason.JSON_TOO_DEEP, None
    except ValueError:
        return Reason.NOT_JSON, None
    if _depth(payload, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        return Reason.JSON_TOO_DEEP, None
    if not (
        isinstance(payload, dict)
        and isinstance(payload.get("event"), str)
        and payload["event"]
        and isinstance(payload.get("id"), str | int)
        and not isinstance(payload["id"], bool)
    ):
        return Reason.NOT_AN_EVENT, None
    return "", payload


STATUS_FOR_REASON = {
    Reason.IP_NOT_ALLOWED: 403,
    Reason.MISSING_SIGNATURE: 401,
    Reason.BAD_SIGNATURE: 401,
}
# Refused before the request proved to come from FlashFX: anyone on the internet can send these.
UNPROVEN = frozenset((*STATUS_FOR_REASON, Reason.TOO_LARGE))


def receive(
    *,
    body: bytes,
    headers: dict[str, str],
    remote_addr: str | None,
    hand_off: Callable[[int], None] = tasks.hand_off,
) -> Receipt:
    """Store the request as one row, whatever it holds, then say what to answer; a new event
    is given to `hand_off` once committed (the view's rides with its answer)."""
    headers = {k.lower(): v for k, v in headers.items()}
    reason, payload = _verdict(body, headers, remote_addr)
    status_code = STATUS_FOR_REASON.get(reason, 400)
    if reason in UNPROVEN and not admitted(remote_addr):
        return Receipt(status_code, None, reason)
    digest, size = hashlib.sha256(body).hexdigest(), len(body)
    if reason in UNPROVEN:
        body = body[: settings.FLASHFX_WEBHOOK_QUARANTINE_BODY_BYTES]
    row = {
        "accepted": not reason,
        "request_id": _text(headers.get("flashfx-request-id", ""), 200),
        "status": Status.QUARANTINED if reason else Status.RECEIVED,
        "reason": reason,
        "event": _text(payload["event"], 64) if payload else "",
        "entity_id": _text(str(payload["id"]), 64) if payload else "",
        "event_scheduled_at": _scheduled_at(payload),
        "body": body,
        "body_sha256": digest,  # of the whole body, as received
        "body_size": size,
        "headers": _kept_headers(headers),
        "remote_addr": remote_addr,
    }
    event_id = insert(row)
    if reason:
        log.warning(
            "webhook quarantined (%s) from %s: request id %r",
            reason,
            remote_addr,
            row["request_id"],
        )
        return Receipt(status_code, event_id, reason)
    if event_id is None:
        return _repeat(row)
    transaction.on_commit(lambda: hand_off(event_id))
    return Receipt(200, event_id, "received")


def too_large(*, size: int, headers: dict[str, str], remote_addr: str | None) -> Receipt:
    """Refused unread (413): recorded without its body so that it is still seen."""
    headers = {k.lower(): v for k, v in headers.items()}
    if not admitted(remote_addr):
        return Receipt(413, None, Reason.TOO_LARGE)
    event_id = insert(
        {
            "accepted": False,
            "request_id": _text(headers.get("flashfx-request-id", ""), 200),
            "status": Status.QUARANTINED,
            "reason": Reason.TOO_LARGE,
            "event": "",
            "entity_id": "",
            "event_scheduled_at": None,
            "body": b"",
            "body_sha256": "",
            "body_size": min(size, MAX_BODY_SIZE),  # the declared size is in the headers
            "headers": _kept_headers(headers),
            "remote_addr": remote_addr,
        }
    )
    log.warning("webhook of %d bytes refused from %s", size, remote_addr)
    return Receipt(413, event_id, Reason.TOO_LARGE)


def admitted(remote_addr: str | None) -> bool:
    """Count an unproven request against its address's minute; False past the cap.

    One upsert, atomic on its own: concurrent requests each get their own count back."""
    cap = settings.FLASHFX_WEBHOOK_QUARANTINE_PER_MINUTE
    minute = QuarantineTally._meta.get_field("minute").get_db_prep_save(
        timezone.now().replace(second=0, microsecond=0), connection
    )
    with connection.cursor() as cursor:
        cursor.execute(_tally_sql(), [remote_addr or "", minute, int(cap >= 1), cap])
        (seen,) = cursor.fetchone()
    if seen == cap + 1:  # once a minute per address, not once per request of a flood
        log.warning(
            "webhook quarantine from %s over %d requests this minute: the rest are refused "
            "unstored and counted",
            remote_addr,
            cap,
        )
    return seen <= cap


@cache
def _tally_sql() -> str:
    quote, table = connection.ops.quote_name, QuarantineTally._meta.db_table
    t = quote(table)
    return (
        # Identifiers are our model's, quoted; every value is a bound parameter.
        f"INSERT INTO {t} ({quote('remote_addr')}, {quote('minute')}, {quote('seen')}, "  # noqa: S608
        f"{quote('kept')}) VALUES (%s, %s, 1, %s) "
        f"ON CONFLICT ({quote('remote_addr')}, {quote('minute')}) DO UPDATE SET "
        f"{quote('kept')} = {t}.{quote('kept')} + "
        f"CASE WHEN {t}.{quote('seen')} < %s THEN 1 ELSE 0 END, "
        f"{quote('seen')} = {t}.{quote('seen')} + 1 RETURNING {quote('seen')}"
    )


def _repeat(row: dict) -> Receipt:
    """A request id we already hold: the same body is a retry (2xx, not processed again)."""
    with bound_cursor() as cursor:  # raw, like the INSERT: the ORM's query building cost more
        cursor.execute(_original_sql(), [row["request_id"]])
        original = cursor.fetchone()
    if original is not None and original[1] == row["body_sha256"]:
        return Receipt(200, original[0], "duplicate")
    conflict_id = insert(
        {**row, "accepted": False, "status": Status.CONFLICT, "reason": Reason.DIFFERENT_BODY}
    )
    log.error(
        "ALERT webhook request id %s reused with a different body (kept as event %s, never applied)",
        row["request_id"],
        conflict_id,
    )
    return Receipt(409, conflict_id, Reason.DIFFERENT_BODY)


def _scheduled_at(payload: dict | None) -> datetime | None:
    value = payload.get("eventScheduledAt") if payload else None
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        # In UTC, as stored: "0001-01-01T00:00:00+01:00" is before year 1 there (OverflowError).
        return parsed.astimezone(UTC) if parsed.tzinfo else None
    except (ValueError, OverflowError):
        return None


_COLUMNS = (
    "accepted",
    "request_id",
    "status",
    "reason",
    "event",
    "entity_id",
    "event_scheduled_at",
    "body",
    "body_sha256",
    "body_size",
    "headers",
    "remote_addr",
    "received_at",
    "attempts",
    "last_error",
    "outcome",
)


@cache
def _insert_sql() -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(InboundEvent._meta.get_field(c).column) for c in _COLUMNS)
    values = placeholders(len(_COLUMNS))  # bound on the server, prepared (bound_cursor)
    return (
        f"INSERT INTO {quote(InboundEvent._meta.db_table)} ({columns}) VALUES ({values}) "  # noqa: S608 (our identifiers, bound values)
        f"ON CONFLICT DO NOTHING RETURNING {quote('id')}"
    )


@cache
def _fields() -> tuple[tuple[str, Any], ...]:
    return tuple((c, InboundEvent._meta.get_field(c)) for c in _COLUMNS)


@cache
def _original_sql() -> str:
    """The accepted row of a request id (the partial unique index makes it one index probe)."""
    quote, table = connection.ops.quote_name, InboundEvent._meta.db_table
    return (
        f"SELECT {quote('id')}, {quote('body_sha256')} FROM {quote(table)} "  # noqa: S608 (our identifiers, bound values)
        f"WHERE {quote('request_id')} = {placeholders(1)} AND {quote('accepted')}"
    )


def insert(row: dict) -> int | None:
    """One INSERT; None when the accepted row for this request id already exists."""
    values = {**row, "received_at": timezone.now(), "attempts": 0, "last_error": "", "outcome": ""}
    params = [field.get_db_prep_save(values[c], connection) for c, field in _fields()]
    with bound_cursor() as cursor:
        cursor.execute(_insert_sql(), params)
        found = cursor.fetchone()
    return found[0] if found else None
