"""The audit trail: one append-only, hash-chained row per staff action (backoffice.AuditEvent).

record() is the only writer. Each row's hash (HMAC-SHA256 with AUDIT_HMAC_KEY, kept outside the
database) covers the previous row's hash and its own fields, so editing, removing or inserting
a row breaks the chain from there on, and cannot be hidden without the key;
`python manage.py verify_audit` recomputes it. Appends are serialised (a PostgreSQL advisory
lock; on SQLite the IMMEDIATE transaction's write lock), and take part in the caller's
transaction: an action and its audit row commit together or not at all.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.http import HttpRequest
from django.utils import timezone

from . import http
from .models import AuditEvent

GENESIS = "0" * 64
LOCK_KEY = 0x464C41534841  # pg_advisory_xact_lock key for appends ("FLASHA")

# Actions. Names are stable: reports and alerts filter on them.
SIGN_IN = "auth.sign_in"
SIGN_IN_FAILED = "auth.sign_in_failed"
SIGN_OUT = "auth.sign_out"
SIGN_OUT_EVERYWHERE = "auth.sign_out_everywhere"
SESSION_EXPIRED = "auth.session_expired"
OTP_ENROLLED = "auth.otp_enrolled"
OTP_VERIFIED = "auth.otp_verified"
OTP_FAILED = "auth.otp_failed"
STEP_UP = "auth.step_up"
STEP_UP_FAILED = "auth.step_up_failed"
LOCKED_OUT = "auth.locked_out"
ROLE_CHANGED = "staff.role_changed"
ACCOUNT_CHANGED = "staff.account_changed"
SESSIONS_ENDED = "staff.sessions_ended"
OTP_RESET = "staff.otp_reset"
SETTINGS_CHANGED = "settings.changed"
EXPORTED = "data.exported"

_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar(
    "audit_request", default=None
)


def client_ip(request: HttpRequest) -> str | None:
    """The member's address through STAFF_TRUSTED_PROXIES of our own proxies (also axes')."""
    return http.client_ip(request.META, trusted_proxies=settings.STAFF_TRUSTED_PROXIES)


def current_request() -> HttpRequest | None:
    """The request being served (set by AuditContextMiddleware), for rows written by signals."""
    return _request.get()


@contextmanager
def bind_request(request: HttpRequest | None) -> Iterator[None]:
    """While serving `request`, audit rows written by signals know who and from where."""
    token = _request.set(request)
    try:
        yield
    finally:
        _request.reset(token)


def _normalised(value: Any) -> Any:
    """As the JSON column gives it back, so that hashes recompute: Decimal and datetimes as
    strings (DjangoJSONEncoder), and floats as the text they were written as (PostgreSQL's jsonb
    would rewrite 1e16 or -0.0, and refuses NaN; money is never a float anyway)."""
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder), parse_float=str, parse_constant=str)


def _fields(event: AuditEvent) -> dict[str, Any]:
    return {
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat(),
        "actor_id": event.actor_id,
        "actor": event.actor,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "before": event.before,
        "after": event.after,
        "details": event.details,
        "remote_addr": event.remote_addr,
        "user_agent": event.user_agent,
    }


def digest(prev_hash: str, event: AuditEvent) -> str:
    payload = json.dumps(
        {"prev_hash": prev_hash, **_fields(event)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        cls=DjangoJSONEncoder,
    )
    return hmac.new(settings.AUDIT_HMAC_KEY.encode(), payload.encode(), hashlib.sha256).hexdigest()


def entry(
    action: str,
    *,
    actor: Any = None,
    request: HttpRequest | None = None,
    obj: models.Model | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """One row, not yet appended (for `append_many`). `actor` defaults to the request's user;
    `request` to the current one."""
    request = request or current_request()
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        actor = user if user is not None and user.is_authenticated else None
    return AuditEvent(
        occurred_at=timezone.now(),
        actor_id=actor.pk if actor is not None else None,
        actor=actor.get_username() if actor is not None else "",
        action=action,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        before=_normalised(before),
        after=_normalised(after),
        details=_normalised(details or {}),
        remote_addr=client_ip(request) if request is not None else None,
        user_agent=(request.META.get("HTTP_USER_AGENT", "")[:300] if request is not None else ""),
    )


def record(
    action: str,
    *,
    actor: Any = None,
    request: HttpRequest | None = None,
    obj: models.Model | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one row (see `entry` for the arguments)."""
    event = entry(
        action,
        actor=actor,
        request=request,
        obj=obj,
        before=before,
        after=after,
        details=details,
    )
    append_many([event])
    return event


def append_many(events: list[AuditEvent]) -> list[AuditEvent]:
    """Append rows made by `entry`, in order, as one piece of the chain: one lock, one read of
    the head, one INSERT (a group of payouts sent together writes its rows this way)."""
    if not events:
        return events
    # No savepoint: the advisory lock is the transaction's anyway, and a failure to record
    # must fail the change it records (no half-applied change without its trail).
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        prev = AuditEvent.objects.order_by("-pk").values_list("hash", flat=True).first() or GENESIS
        for event in events:
            event.prev_hash = prev
            event.hash = prev = digest(prev, event)
        AuditEvent.objects.bulk_create(events)  # one INSERT: ids in list order, as chained
    return events


@dataclass(frozen=True)
class Break:
    event_id: int
    problem: str


def verify_chain(*, chunk_size: int = 2000) -> tuple[int, str, list[Break]]:
    """Recompute every row's hash in order: (rows checked, head hash, breaks found)."""
    expected_prev, count, breaks = GENESIS, 0, []
    rows: Iterator[AuditEvent] = AuditEvent.objects.order_by("pk").iterator(chunk_size=chunk_size)
    for event in rows:
        count += 1
        if event.prev_hash != expected_prev:
            breaks.append(
                Break(
                    event.pk,
                    "previous hash does not match the row before it (a row removed or inserted)",
                )
            )
        if digest(event.prev_hash, event) != event.hash:
            breaks.append(Break(event.pk, "hash does not match the row's contents (edited)"))
        expected_prev = event.hash
    return count, expected_prev, breaks
