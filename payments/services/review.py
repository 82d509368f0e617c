"""Our review of a deposit, beside FlashFX's status: new, matched, accepted, flagged, rejected.

`deposit_review_move` is the one way the review state changes, whoever moves it (a member
accepting or flagging, matching, a completed refund): a compare-and-set on the row and an
audit event, in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from backoffice import audit

from ..models import Deposit, DepositNote

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


# What members do in the review panel and the queue -----------------------------------------

# FlashFX statuses after which accepting makes no sense: the money is going or has gone back
# (REFUNDING, REFUNDED) or never arrived (CANCELLED). docs/flashfx.md §3.2.
NOT_ACCEPTABLE = frozenset({"REFUNDING", "REFUNDED", "CANCELLED"})


def deposit_assign(*, deposit: Deposit, assignee: Any, actor: Any) -> Deposit:
    """Give the deposit to `assignee` (None: nobody); audit event deposit.assigned/unassigned."""
    old = deposit.assignee_id
    new = assignee.pk if assignee is not None else None
    if old == new:
        return deposit
    with transaction.atomic():
        Deposit.objects.filter(pk=deposit.pk).update(assignee_id=new, updated_at=timezone.now())
        deposit.assignee = assignee
        audit.record(
            "deposit.assigned" if new else "deposit.unassigned",
            actor=actor,
            obj=deposit,
            before={"assignee_id": old},
            after={"assignee_id": new},
        )
    return deposit


def deposit_note_add(*, deposit: Deposit, text: str, actor: Any) -> DepositNote:
    text = (text or "").strip()
    if not text:
        raise ReviewError("Write the note first.")
    if len(text) > 2000:
        raise ReviewError("A note is at most 2,000 characters.")
    with transaction.atomic():
        note = DepositNote.objects.create(deposit=deposit, author=actor, text=text)
        audit.record("deposit.note.added", actor=actor, obj=deposit, details={"note": note.pk})
    return note


def deposit_accept(*, deposit: Deposit, actor: Any) -> Deposit:
    """Mark the deposit accepted (ours; FlashFX's status is left alone)."""
    if deposit.flashfx_status in NOT_ACCEPTABLE:
        raise ReviewError(
            f"FlashFX has this deposit as {deposit.flashfx_status}: there is nothing to accept."
        )
    return deposit_review_move(deposit=deposit, to=Review.ACCEPTED, actor=actor)


def deposit_flag(*, deposit: Deposit, note: str, actor: Any) -> Deposit:
    """Flag for a second look; the note says why and is required."""
    if not (note or "").strip():
        raise ReviewError("Say why you flag it: a note is required.")
    with transaction.atomic():
        added = deposit_note_add(deposit=deposit, text=note, actor=actor)
        deposit_review_move(
            deposit=deposit, to=Review.FLAGGED, actor=actor, details={"note": added.pk}
        )
    return deposit


@dataclass
class BulkResult:
    accepted: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (flashfx id, why)


def deposits_accept_many(*, flashfx_ids: list[str], actor: Any) -> BulkResult:
    """Accept each selected deposit on its own (one bad row does not undo the others)."""
    result = BulkResult()
    wanted = list(dict.fromkeys(i for i in flashfx_ids if i))
    found = {d.flashfx_id: d for d in Deposit.objects.flashfx_ids(wanted)}
    for flashfx_id in wanted:
        deposit = found.get(flashfx_id)
        if deposit is None:
            result.skipped.append((flashfx_id, "No such deposit."))
            continue
        try:
            deposit_accept(deposit=deposit, actor=actor)
        except ReviewError as e:
            result.skipped.append((flashfx_id, str(e)))
        else:
            result.accepted.append(flashfx_id)
    # Each accepted row has its own deposit.review.accepted event; this one says what was asked.
    audit.record(
        "deposit.bulk_accept",
        actor=actor,
        details={"accepted": result.accepted, "skipped": [list(s) for s in result.skipped]},
    )
    return result
