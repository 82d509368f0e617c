"""What the international payment pages read: the list (state filter, keyset pages), one
order, and its timeline (our states and FlashFX's payment statuses). Paging and the timeline's
entries are the payout pages' (payments/selectors/payouts.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from backoffice.models import AuditEvent

from ..models import Approval, PaymentOrder
from .payouts import Entry, keyset_page, workflow_timeline

PAGE_SIZE = 50
APPROVE_PERMISSION = "payments.approve_payment"


def _orders() -> QuerySet[PaymentOrder]:
    return PaymentOrder.objects.select_related(
        "recipient", "sender", "sub_client", "created_by", "approval", "payment"
    )


@dataclass
class PaymentOrderPage:
    rows: list[PaymentOrder]
    next_cursor: str | None


def payment_order_list(
    *, state: str = "", after: str = "", limit: int = PAGE_SIZE
) -> PaymentOrderPage:
    """Newest first, filtered by our state, cut by a keyset cursor (new orders never shift the
    page you are on). A cursor that does not parse starts over."""
    return PaymentOrderPage(
        *keyset_page(payment_orders_filtered(state=state), after=after, limit=limit)
    )


def payment_order_list_filters(query: Any) -> dict[str, str]:
    """The list's filters from its query string; a state that is not one of ours is no filter."""
    state = query.get("state", "")
    return {"state": state if state in PaymentOrder.State.values else ""}


def payment_orders_filtered(*, state: str = "") -> QuerySet[PaymentOrder]:
    """Every order the list's filters select, newest first (the list and its export)."""
    rows = _orders().order_by("-created_at", "-id")
    if state:
        rows = rows.filter(state=state)
    return rows


def payment_order_get(*, code: str) -> PaymentOrder | None:
    return _orders().filter(code=code).first()


def payment_orders_waiting_for(*, user: Any) -> QuerySet[PaymentOrder]:
    """Orders this member may approve now: awaiting approval, not expired, not theirs, not
    already signed by them; oldest first."""
    if not user.has_perm(APPROVE_PERMISSION):
        return PaymentOrder.objects.none()
    return (
        _orders()
        .filter(
            state=PaymentOrder.State.AWAITING_APPROVAL,
            approval__state=Approval.State.PENDING,
            approval__expires_at__gt=timezone.now(),
        )
        .exclude(created_by_id=user.pk)
        .exclude(approval__signatures__signer_id=user.pk)
        .order_by("created_at", "id")
    )


def payment_order_timeline(*, order: PaymentOrder) -> list[Entry]:
    """Our workflow's events and FlashFX's status moves of the payment (mirrors.StatusChange),
    oldest first."""
    return workflow_timeline(
        events=order.events.select_related("actor"),
        entity="payments.payment",
        flashfx_id=order.payment.flashfx_id if order.payment is not None else None,
    )


def payment_order_audit(*, order: PaymentOrder) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(object_type="payments.paymentorder", object_id=str(order.pk))
