"""Our review of a deposit, beside FlashFX's status: new, matched, accepted, flagged, rejected.

`deposit_review_move` is the one way the review state changes, whoever moves it (a member
accepting or flagging, matching, a completed refund): a compare-and-set on the row and an
audit event, in one transaction.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from backoffice import audit

from ..models import Deposit

Review = Deposit.Review

# Allowed moves. Rejected is final: the money went back.
MOVES: dict[str, frozenset[str]] = {
    Review.NEW: frozenset({Review.MATCHED, Review.ACCEPTED, Review.FLAGGED, Review.REJECTED}),
    Review.MATCHED: frozenset({Review.ACCEPTED, Review.FLAGGED, Review.REJECTED}),
    Review.ACCEPTED: frozenset({Review.FLAGGED, Review.REJECTED}),
    Review.FLAGGED: frozenset({Review.MATCHED, Review.ACCEPTED, Review.REJECTED}),
    Review.REJECTED: frozenset(),
}


class ReviewError(Exception):
    """A review action that cannot be done; the message says why, for the member."""


def deposit_review_move(
    *,
    deposit: Deposit,
    to: str,
    actor: Any = None,
    details: dict[str, Any] | None = None,
) -> Deposit:
    """Move `deposit`'s review state to `to` and record `deposit.review.<to>`; ReviewError if
    the move is not allowed or someone moved it meanwhile. `actor` None: the system did it."""
    old = deposit.review_state
    if to not in MOVES[old]:
        raise ReviewError(
            f"A deposit that is {Review(old).label.lower()} cannot be marked "
            f"{Review(to).label.lower()}."
        )
    with transaction.atomic():
        moved = Deposit.objects.filter(pk=deposit.pk, review_state=old).update(
            review_state=to, updated_at=timezone.now()
        )
        if not moved:
            raise ReviewError("Someone else changed this deposit's review meanwhile; reload it.")
        deposit.review_state = to
        audit.record(
            f"deposit.review.{to}",
            actor=actor,
            obj=deposit,
            before={"review_state": old},
            after={"review_state": to},
            details=details,
        )
    return deposit
