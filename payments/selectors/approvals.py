"""What the approvals page reads: pending approvals (what would be sent) and recent decisions."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from ..models import Approval

RECENT = 20


def approvals_pending() -> QuerySet[Approval]:
    """Pending approvals, oldest first (the one waiting longest at the top)."""
    return (
        Approval.objects.filter(state=Approval.State.PENDING)
        .select_related("requested_by")
        .order_by("requested_at", "id")
    )


def approvals_decided(*, limit: int = RECENT) -> list[Approval]:
    """The latest decisions (approved, declined, expired, cancelled), newest first."""
    return list(
        Approval.objects.exclude(state=Approval.State.PENDING)
        .select_related("requested_by", "decided_by")
        .order_by("-decided_at", "-id")[:limit]
    )


def approval_can_decide(*, approval: Approval, user: Any) -> bool:
    """Whether `user` may approve or decline it: someone else, with its permission."""
    return (
        approval.state == Approval.State.PENDING
        and approval.requested_by_id != user.pk
        and user.has_perm(approval.permission)
    )
