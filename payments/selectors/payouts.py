"""What the payout pages read: the list (filters, keyset pages), "waiting for my approval",
one payout's signatures and timeline, and the cleared balance beside a new payout's amount."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from backoffice.models import AuditEvent
from flashfx.errors import FlashFXError
from mirrors.client import flashfx_client
from mirrors.models import StatusChange
from parties import selectors as parties

from ..models import Approval, Payout, Withdrawal

log = logging.getLogger(__name__)

PAGE_SIZE = 50
APPROVE_PERMISSION = "payments.approve_payout"


def _payouts() -> QuerySet[Payout]:
    return Payout.objects.select_related(
        "recipient", "sender", "sub_client", "maker", "approval", "withdrawal"
    )


# --- The list ---------------------------------------------------------------------------------


def _cursor(payout: Payout) -> str:
    raw = json.dumps([payout.created_at.isoformat(), payout.pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _uncursor(token: str) -> tuple[datetime, int] | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        at, pk = json.loads(raw)
        moment = parse_datetime(at)
        if moment is None or not isinstance(pk, int):
            return None
        return moment, pk
    except (ValueError, TypeError, binascii.Error):
        return None


@dataclass
class PayoutPage:
    rows: list[Payout]
    next_cursor: str | None


def payout_list(
    *, state: str = "", flashfx_status: str = "", after: str = "", limit: int = PAGE_SIZE
) -> PayoutPage:
    """Newest first, filtered by our state and FlashFX's status, cut by a keyset cursor (new
    payouts never shift the page you are on). A cursor that does not parse starts over."""
    rows = payouts_filtered(state=state, flashfx_status=flashfx_status)
    return PayoutPage(*keyset_page(rows, after=after, limit=limit))


def payout_list_filters(query: Any) -> dict[str, str]:
    """The list's filters from its query string; a value that is not one of ours is no filter."""
    state = query.get("state", "")
    status = query.get("status", "")
    if state not in Payout.State.values:
        state = ""
    if status not in (*Withdrawal.STATUS_ORDER.ranks, "none"):
        status = ""
    return {"state": state, "flashfx_status": status}


def payouts_filtered(*, state: str = "", flashfx_status: str = "") -> QuerySet[Payout]:
    """Every payout the list's filters select, newest first (the list and its export)."""
    rows = _payouts().order_by("-created_at", "-id")
    if state:
        rows = rows.filter(state=state)
    if flashfx_status == "none":
        rows = rows.filter(withdrawal=None)
    elif flashfx_status:
        rows = rows.filter(withdrawal__flashfx_status=flashfx_status)
    return rows


def keyset_page(rows: QuerySet, *, after: str, limit: int) -> tuple[list, str | None]:
    """Rows ordered newest first (-created_at, -id) cut after a cursor: the page, and the cursor
    of the next one (None on the last). A cursor that does not parse starts over."""
    if after and (cursor := _uncursor(after)):
        at, pk = cursor
        rows = rows.filter(Q(created_at__lt=at) | Q(created_at=at, id__lt=pk))
    page = list(rows[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return page, _cursor(page[-1]) if more and page else None


def payout_get(*, code: str) -> Payout | None:
    return _payouts().filter(code=code).first()


# --- Waiting for my approval ------------------------------------------------------------------


def payouts_waiting_for(*, user: Any) -> QuerySet[Payout]:
    """Payouts this member may approve now: awaiting approval, not expired, not theirs, not
    already signed by them; oldest first."""
    if not user.has_perm(APPROVE_PERMISSION):
        return Payout.objects.none()
    return (
        _payouts()
        .filter(
            state=Payout.State.AWAITING_APPROVAL,
            approval__state=Approval.State.PENDING,
            approval__expires_at__gt=timezone.now(),
        )
        .exclude(maker_id=user.pk)
        .exclude(approval__signatures__signer_id=user.pk)
        .order_by("created_at", "id")
    )


# --- One payout -------------------------------------------------------------------------------


@dataclass
class Entry:
    at: datetime
    kind: str  # "ours", "flashfx"
    title: str
    actor: str = ""
    detail: str = ""


STATE_WORDS = dict(Payout.State.choices)


def payout_timeline(*, payout: Payout) -> list[Entry]:
    """Our workflow's events and FlashFX's status moves (mirrors.StatusChange), oldest first."""
    return workflow_timeline(
        events=payout.events.select_related("actor"),
        entity="payments.withdrawal",
        flashfx_id=payout.withdrawal.flashfx_id if payout.withdrawal is not None else None,
    )


def workflow_timeline(*, events: Any, entity: str, flashfx_id: str | None) -> list[Entry]:
    """Events of one of our workflows (from_state, to_state, actor, at, detail; the states are
    Payout.State's) and the status moves of its FlashFX entity, if any, oldest first: a
    payout's and a payment order's (payments/selectors/payment_orders.py)."""
    entries = [
        Entry(
            at=e.at,
            kind="ours",
            title=(
                STATE_WORDS.get(e.to_state, e.to_state)
                if e.from_state != e.to_state
                else f"{STATE_WORDS.get(e.to_state, e.to_state)} (again)"
            ),
            actor=e.actor.get_username() if e.actor else "",
            detail=e.detail,
        )
        for e in events
    ]
    if flashfx_id is not None:
        for change in StatusChange.objects.filter(entity=entity, flashfx_id=flashfx_id):
            title = (
                f"FlashFX: {change.old_status} \u2192 {change.new_status}"
                if change.old_status
                else f"FlashFX: {change.new_status}"
            )
            entries.append(
                Entry(at=change.recorded_at, kind="flashfx", title=title, detail=change.source)
            )
    entries.sort(key=lambda e: e.at)
    return entries


def payout_audit(*, payout: Payout) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(object_type="payments.payout", object_id=str(payout.pk))


def cleared_balance(currency: str = "AUD") -> Decimal | None:
    """FlashFX's cleared balance in this currency, or None when FlashFX cannot say now."""
    try:
        rows = flashfx_client().balances([currency])
    except FlashFXError as exc:
        log.warning("balances: %s", exc)
        return None
    for row in rows:
        if row.currency == currency:
            return row.cleared.quantize(Decimal("0.01"))  # the wire may say 50000.0
    return Decimal("0.00")


def recipient_flags(recipient: Any) -> dict[str, Any]:
    """What a payout's page says about its recipient (parties/selectors.py): until when its bank
    details count as new ("new recipient / bank details changed"), and its latest Confirmation
    of Payee check of those details (advisory; None when never checked)."""
    return {
        "cooling_until": parties.recipient_cooling_until(recipient),
        "payee_check": parties.payee_check_latest(recipient),
    }
