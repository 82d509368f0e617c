"""What the expected-payments page and a deposit's match panel read."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from ..models import Deposit, ExpectedPayment, MatchProposal
from ..services.matching import MATCHABLE_STATUSES, OPEN_REVIEW

STATES = ("unmatched", "overdue", "upcoming", "matched", "all")
PAGE = 200  # rows per list; the page says when there are more


def today() -> date:
    """Today in the office's time zone (settings.TIME_ZONE): what "due" and "overdue" mean."""
    return timezone.localdate()


def expected_payment_list(
    *,
    state: str = "unmatched",
    q: str = "",
    sub_client_id: int | None = None,
    due_from: date | None = None,
    due_to: date | None = None,
) -> QuerySet[ExpectedPayment]:
    """Expected payments in one state: unmatched (earliest due first), overdue (unmatched and
    past their due date), upcoming (unmatched, due today or later), matched (latest match first) or all; `q` searches the payer name and
    the reference."""
    rows = ExpectedPayment.objects.select_related("sub_client", "deposit", "created_by")
    if state == "unmatched":
        rows = rows.filter(deposit=None).order_by("due_on", "id")
    elif state == "overdue":
        rows = rows.filter(deposit=None, due_on__lt=today()).order_by("due_on", "id")
    elif state == "upcoming":  # unmatched and not yet overdue
        rows = rows.filter(deposit=None, due_on__gte=today()).order_by("due_on", "id")
    elif state == "matched":
        rows = rows.exclude(deposit=None).order_by("-matched_at", "-id")
    else:
        rows = rows.order_by("-due_on", "-id")
    if q:
        rows = rows.filter(Q(payer_name__icontains=q) | Q(reference__icontains=q))
    if sub_client_id is not None:
        rows = rows.filter(sub_client_id=sub_client_id)
    if due_from is not None:
        rows = rows.filter(due_on__gte=due_from)
    if due_to is not None:
        rows = rows.filter(due_on__lte=due_to)
    return rows


def proposals_awaiting(*, deposit: Deposit | None = None) -> QuerySet[MatchProposal]:
    """Near matches a person has still to confirm or refuse: proposed, with both sides still
    unmatched and the deposit still open to matching (a proposal whose expectation or deposit
    was matched otherwise, or whose deposit was accepted, rejected or cancelled meanwhile,
    waits for no one)."""
    rows = MatchProposal.objects.filter(
        state=MatchProposal.State.PROPOSED,
        expected__deposit=None,
        deposit__expected_payment__isnull=True,
        deposit__review_state__in=OPEN_REVIEW,
        deposit__flashfx_status__in=MATCHABLE_STATUSES,
    ).select_related("expected", "expected__sub_client", "deposit")
    if deposit is not None:
        rows = rows.filter(deposit=deposit)
    return rows.order_by("created_at", "id")


def deposit_expected_payment(*, deposit: Deposit) -> ExpectedPayment | None:
    """The expectation a deposit was matched to, if any."""
    return (
        ExpectedPayment.objects.select_related("matched_by", "sub_client")
        .filter(deposit=deposit)
        .first()
    )


def match_panel(*, deposit: Deposit, user: Any) -> dict[str, Any]:
    """What a deposit's match panel shows: its expectation, or the proposals still open."""
    expected = deposit_expected_payment(deposit=deposit)
    return {
        "deposit": deposit,
        "expected": expected,
        "proposals": [] if expected else list(proposals_awaiting(deposit=deposit)),
        "may_decide": bool(user and user.has_perm("payments.review_deposit")),
    }
