"""Matching deposits to the payments staff expect, and marking third-party payers.

1. Before a deposit is first mirrored (DEPOSITS.prepare_new, so that the row is written once),
   `mark_new_deposits` marks it third-party when its payer name is like neither the company's
   names (settings.COMPANY_NAMES) nor the sub-client it was paid to (payments/services/names.py).
2. Once written (DEPOSITS.on_change -> arrivals.deposits_changed, in the same transaction),
   `deposits_arrived` matches it: an unmatched expectation with the same reference (`reference_key`: case,
   spaces and separators such as "-" or "/" do not count) and the same amount (same
   currency; the same sub-client when the expectation names one) is linked to it at once, and
   its review state moves to "matched" with no person involved. Otherwise near matches (the
   same amount and a similar payer name, or the same reference and another amount) become
   MatchProposals a person confirms or refuses.

`expectations_recorded` does the same from the other side, for expectations recorded after
their deposit arrived (deposits still unmatched: review state new or flagged).

At most once, whatever runs at the same time: an expectation is linked by a conditional UPDATE
(`deposit IS NULL`), and the database's one-to-one constraint refuses a second expectation for
the same deposit. Locks are always taken deposit first, then expectation. Idempotent: a
deposit already matched is left alone, proposals are unique per (expectation, deposit) and a
refused one is never proposed again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Value
from django.db.models.expressions import Func
from django.db.models.functions import Replace, Upper
from django.utils import timezone

from backoffice import audit
from parties.models import SubClient

from ..models import Deposit, ExpectedPayment, MatchProposal
from . import names
from .review import ReviewError, deposit_review_move

log = logging.getLogger(__name__)

Review = Deposit.Review

# Deposits that may still be matched: not refunded or cancelled (the money is not ours to count).
MATCHABLE_STATUSES = ("INITIALISED", "REVIEWING", "CONFIRMED")
# Review states in which a deposit is still waiting for what it pays for.
OPEN_REVIEW = (Review.NEW, Review.FLAGGED)
# How far back an expectation recorded late looks for its deposit (by FlashFX's creation time).
LOOKBACK = timedelta(days=90)
# An upload's limits (the form checks the file's size and rows; this is the rule).
MAX_BATCH = 1000

SAME_AMOUNT_SIMILAR_NAME = "same amount, similar payer name"
SAME_REFERENCE_OTHER_AMOUNT = "same reference, different amount"

CONFIRMED = "deposit.match.confirmed"
REFUSED = "deposit.match.refused"
RECORDED = "expected_payment.recorded"
UNMATCHED = "expected_payment.unmatched"
REMOVED = "expected_payment.removed"


class MatchError(Exception):
    """A matching action that cannot be done; the message says why, for the member."""


# ---------------------------------------------------------------------------------------------
# Third-party payers


def payer_is_third_party(deposit: Deposit, sub_client_names: Sequence[str] = ()) -> bool:
    """The payer's name is like neither the company's names nor the sub-client paid to.

    `sub_client_names`: the sub-client's full and legal names (read from the deposit's
    sub-client when not given). A deposit with no payer name is third-party too: nobody can
    tell whose money it is; so is one paid to a sub-client we have not mirrored yet, unless the
    payer is the company.
    """
    if not sub_client_names and deposit.sub_client_id:
        sub_client = deposit.sub_client
        if sub_client is not None:
            sub_client_names = [sub_client.full_name, sub_client.legal_name]
    own = [*settings.COMPANY_NAMES, *sub_client_names]
    return not names.matches_any(deposit.sender_account_name, own)


def mark_new_deposits(deposits: Sequence[Deposit]) -> None:
    """Set each deposit's third-party mark from its payer's name, on the rows about to be
    mirrored (DEPOSITS.prepare_new): written with the row, not by an UPDATE after it. A
    derivation from FlashFX's data by the system, not a staff action: no audit event, as for
    the mirror's own columns. Nobody chose it, and the same data gives it again."""
    ids = {d.sub_client_id for d in deposits if d.sub_client_id}
    sub_clients: dict[int | None, tuple[str, ...]] = {
        pk: (full, legal)
        for pk, full, legal in SubClient.objects.filter(pk__in=ids).values_list(
            "pk", "full_name", "legal_name"
        )
    }
    for deposit in deposits:
        deposit.third_party = payer_is_third_party(
            deposit, sub_clients.get(deposit.sub_client_id, ())
        )


# ---------------------------------------------------------------------------------------------
# The rule


# What payers type between the parts of a reference, and which does not make it another one:
# "INV-1042", "inv 1042", "INV/1042" and "INV1042" are the same invoice. Letters and digits
# count, in order; nothing else is dropped (an apostrophe or a plus stays significant).
REFERENCE_SEPARATORS = " -/._#:,"


def reference_key(reference: str) -> str:
    """A reference as compared: case and the separators above do not count."""
    key = (reference or "").upper()
    for ch in REFERENCE_SEPARATORS + "\t\n":
        key = key.replace(ch, "")
    return key


def reference_key_sql(field: str) -> Func:
    """reference_key as a database expression, the same on SQLite and PostgreSQL, so that a
    query narrows candidates by exactly the key `exact` and `near` then compare."""
    expression: Func = Upper(field)
    for ch in REFERENCE_SEPARATORS + "\t\n":
        expression = Replace(expression, Value(ch), Value(""))
    return expression


def _same_party(expected: ExpectedPayment, deposit: Deposit) -> bool:
    """Same currency, and the expectation's sub-client (when it names one) is the deposit's."""
    return expected.currency == deposit.currency and (
        expected.sub_client_id is None or expected.sub_client_id == deposit.sub_client_id
    )


@dataclass(frozen=True)
class Near:
    reason: str


def exact(expected: ExpectedPayment, deposit: Deposit) -> bool:
    """The same non-blank reference and the same amount (and currency and sub-client)."""
    key = reference_key(expected.reference)
    return (
        bool(key)
        and _same_party(expected, deposit)
        and expected.amount == deposit.amount
        and key == reference_key(deposit.external_reference)
    )


def near(expected: ExpectedPayment, deposit: Deposit) -> Near | None:
    """Why the two might belong together, for a person to decide; None when they do not."""
    if not _same_party(expected, deposit):
        return None
    key = reference_key(expected.reference)
    same_reference = bool(key) and key == reference_key(deposit.external_reference)
    if same_reference and expected.amount != deposit.amount:
        return Near(
            f"{SAME_REFERENCE_OTHER_AMOUNT} (expected {expected.currency} {expected.amount})"
        )
    if expected.amount == deposit.amount and not same_reference:
        score = names.similarity(expected.payer_name, deposit.sender_account_name)
        if score >= names.SIMILARITY_THRESHOLD:
            return Near(f"{SAME_AMOUNT_SIMILAR_NAME} ({score:.2f})")
    return None


def _claim(*, expected: ExpectedPayment, deposit: Deposit, by: Any) -> bool:
    """Link the expectation to the deposit; False when either was taken meanwhile.

    A conditional UPDATE (only while the expectation has no deposit), in a savepoint: a lost
    race (the deposit linked to another expectation: the one-to-one constraint) rolls back
    this attempt only.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            linked = ExpectedPayment.objects.filter(pk=expected.pk, deposit=None).update(
                deposit=deposit, matched_at=now, matched_by=by
            )
    except IntegrityError:
        log.info("deposit %s was matched meanwhile; %s stays open", deposit.pk, expected.pk)
        return False
    if not linked:
        return False
    expected.deposit, expected.matched_at, expected.matched_by = deposit, now, by
    return True


def _matched(*, expected: ExpectedPayment, deposit: Deposit, by: Any, how: str) -> None:
    """The deposit's review moves to matched (its audit event says which expectation).

    Called only after every row lock the caller needs is held: the audit trail's append lock
    (backoffice/audit.py) is then the last lock taken, so two transactions never wait for each
    other's rows while one holds it. The deposit is locked and open, so the move is allowed;
    should it not be, the link is undone (and said in the log) rather than left half made.
    """
    try:
        with transaction.atomic():
            deposit_review_move(
                deposit=deposit,
                to=Review.MATCHED,
                actor=by,
                details={
                    "expected_payment": str(expected.code),
                    "how": how,
                    "payer_name": expected.payer_name,
                    "amount": expected.amount,
                    "currency": expected.currency,
                    "reference": expected.reference,
                },
            )
    except ReviewError as exc:
        log.error("deposit %s not matched to expectation %s: %s", deposit.pk, expected.pk, exc)
        ExpectedPayment.objects.filter(pk=expected.pk).update(
            deposit=None, matched_at=None, matched_by=None
        )
        expected.deposit, expected.matched_at, expected.matched_by = None, None, None


EXACT = "exact reference and amount"


def _propose(pairs: Iterable[tuple[ExpectedPayment, Deposit, Near]]) -> int:
    """Proposals for a person; one per pair ever (a refused pair is not proposed again)."""
    rows = [MatchProposal(expected=e, deposit=d, reason=n.reason[:200]) for e, d, n in pairs]
    if not rows:
        return 0
    MatchProposal.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def _may_match(deposit: Deposit) -> bool:
    return deposit.flashfx_status in MATCHABLE_STATUSES and deposit.review_state in OPEN_REVIEW


def _open_expectations_for(deposits: Sequence[Deposit]) -> list[ExpectedPayment]:
    """Unmatched expectations one of `deposits` could match, exactly or nearly: the same
    amount, or the same reference (compared in full by `exact` and `near`)."""
    unmatched = ExpectedPayment.objects.filter(deposit=None)
    if not unmatched.exists():
        return []  # nothing expected: no need to send a window's amounts and references
    amounts = {d.amount for d in deposits}
    references = {reference_key(d.external_reference) for d in deposits} - {""}
    # Two IN lists, not an OR per deposit: a sync window brings hundreds at once.
    return list(
        unmatched.annotate(reference_key=reference_key_sql("reference"))
        .filter(Q(amount__in=amounts) | Q(reference_key__in=references))
        .order_by("due_on", "id")
    )


# ---------------------------------------------------------------------------------------------
# Entry points


def deposits_arrived(*, deposits: list[Deposit]) -> None:
    """Newly mirrored deposits (marked already by `mark_new_deposits`): the exact match
    (review state matched) or near-match proposals. Runs in the mirroring transaction, which
    holds the rows' locks already."""
    open_deposits = [d for d in deposits if _may_match(d)]
    if not open_deposits:
        return
    candidates = _open_expectations_for(open_deposits)
    if not candidates:
        return
    already = set(
        ExpectedPayment.objects.filter(deposit_id__in=[d.pk for d in open_deposits]).values_list(
            "deposit_id", flat=True
        )
    )
    linked: list[tuple[ExpectedPayment, Deposit]] = []
    near_pairs: list[tuple[ExpectedPayment, Deposit, Near]] = []
    for deposit in open_deposits:
        if deposit.pk in already:
            continue
        for expected in candidates:  # earliest due first
            if (
                expected.deposit_id is None
                and exact(expected, deposit)
                and _claim(expected=expected, deposit=deposit, by=None)
            ):
                linked.append((expected, deposit))
                break
        else:
            near_pairs += [
                (e, deposit, n)
                for e in candidates
                if e.deposit_id is None and (n := near(e, deposit))
            ]
    _propose(near_pairs)
    for expected, deposit in linked:
        _matched(expected=expected, deposit=deposit, by=None, how=EXACT)


def expectations_recorded(*, expected: list[ExpectedPayment]) -> None:
    """Newly recorded expectations against deposits already mirrored and still unmatched
    (review state new or flagged): the exact match, or near-match proposals."""
    if not expected:
        return
    amounts = {e.amount for e in expected}
    references = {reference_key(e.reference) for e in expected} - {""}
    since = min(e.created_at for e in expected) - LOOKBACK
    deposits = list(
        Deposit.objects.annotate(reference_key=reference_key_sql("external_reference"))
        .filter(
            Q(amount__in=amounts) | Q(reference_key__in=references),
            flashfx_status__in=MATCHABLE_STATUSES,
            review_state__in=OPEN_REVIEW,
            expected_payment__isnull=True,
            flashfx_created_at__gte=since,
        )
        .select_related("sub_client")
        .order_by("flashfx_created_at", "id")[: MAX_BATCH * 2]
    )
    # Pair them as read, earliest due with earliest received; then lock those deposits all at
    # once, in key order, and keep the pairs that still hold.
    pairs: dict[int, ExpectedPayment] = {}
    for e in sorted(expected, key=lambda e: (e.due_on, e.pk)):
        candidate = next((d for d in deposits if d.pk not in pairs and exact(e, d)), None)
        if candidate is not None:
            pairs[candidate.pk] = e
    linked: list[tuple[ExpectedPayment, Deposit]] = []
    with transaction.atomic():
        locked = {
            d.pk: d for d in Deposit.objects.select_for_update().filter(pk__in=pairs).order_by("pk")
        }
        taken = set(
            ExpectedPayment.objects.filter(deposit__in=list(locked)).values_list(
                "deposit_id", flat=True
            )
        )
        for pk, e in pairs.items():
            deposit = locked.get(pk)
            if deposit is None or pk in taken or not _may_match(deposit):
                continue
            if _claim(expected=e, deposit=deposit, by=None):
                linked.append((e, deposit))
        linked_pks = {d.pk for _, d in linked}
        _propose(
            (e, d, n)
            for e in expected
            if e.deposit_id is None
            for d in deposits
            if d.pk not in linked_pks and (n := near(e, d))
        )
        for e, deposit in linked:
            _matched(expected=e, deposit=deposit, by=None, how=EXACT)


def deposits_moved(*, changes: list[Any]) -> None:
    """A matched deposit FlashFX cancelled, or whose money went back in full, pays for nothing:
    its expectation is open again (and overdue once past its due date), with an audit event
    `expected_payment.unmatched`. `changes` are mirrors.apply.Change rows of status moves.

    For payments/services/arrivals.py to call beside refunds.deposits_moved (not wired on this
    branch: arrivals.py is shared).
    """
    ended = [
        c.obj
        for c in changes
        if c.status_moved
        and (
            c.new_status == "CANCELLED"
            or (
                c.new_status == "REFUNDED"
                and (c.obj.refund_amount is None or c.obj.refund_amount >= c.obj.amount)
            )
        )
    ]
    if not ended:
        return
    reopened = list(
        ExpectedPayment.objects.select_for_update().filter(deposit__in=ended).order_by("pk")
    )
    by_deposit = {d.pk: d for d in ended}
    for expected in reopened:
        deposit = by_deposit[expected.deposit_id]
        ExpectedPayment.objects.filter(pk=expected.pk).update(
            deposit=None, matched_at=None, matched_by=None
        )
        audit.record(
            UNMATCHED,
            actor=None,
            obj=expected,
            details={
                "deposit": deposit.flashfx_id,
                "flashfx_status": deposit.flashfx_status,
                "was_matched_at": expected.matched_at,
            },
        )


def expected_payments_record(
    rows: Sequence[Mapping[str, Any]], *, by: Any, source: str = ExpectedPayment.Source.FORM
) -> list[ExpectedPayment]:
    """Save expected payments (all or none), record one audit event for the batch, then match
    them against deposits already here. MatchError when a row breaks a rule."""
    if not rows:
        raise MatchError("There is nothing to record: no expected payments were given.")
    if len(rows) > MAX_BATCH:
        raise MatchError(f"At most {MAX_BATCH} expected payments can be recorded at once.")
    objs = []
    for n, row in enumerate(rows, start=1):
        where = f"Row {n}: " if len(rows) > 1 else ""
        amount = row["amount"]
        if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
            raise MatchError(f"{where}the amount must be more than zero.")
        if amount != amount.quantize(Decimal("0.01")):
            raise MatchError(f"{where}the amount has more than two decimal places.")
        payer_name = (row.get("payer_name") or "").strip()
        if not payer_name:
            raise MatchError(f"{where}the payer name is missing.")
        currency = (row.get("currency") or "AUD").strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            raise MatchError(f"{where}the currency must be a three-letter code such as AUD.")
        if not isinstance(row.get("due_on"), date):
            raise MatchError(f"{where}the due date is missing.")
        objs.append(
            ExpectedPayment(
                payer_name=payer_name,
                amount=amount,
                currency=currency,
                reference=" ".join((row.get("reference") or "").split()),
                due_on=row["due_on"],
                sub_client=row.get("sub_client"),
                source=source,
                created_by=by,
            )
        )
    with transaction.atomic():
        created = ExpectedPayment.objects.bulk_create(objs)
        expectations_recorded(expected=created)  # row locks first, the audit trail's last
        total: dict[str, Decimal] = {}
        for e in created:
            total[e.currency] = total.get(e.currency, Decimal("0")) + e.amount
        audit.record(
            RECORDED,
            actor=by,
            obj=created[0] if len(created) == 1 else None,
            details={
                "count": len(created),
                "source": str(source),
                "totals": {c: str(v) for c, v in sorted(total.items())},
                "matched": sum(1 for e in created if e.deposit_id),
            },
        )
    return created


def _lock_proposal(proposal: MatchProposal) -> MatchProposal:
    locked = (
        MatchProposal.objects.select_for_update()
        .select_related("expected", "deposit")
        .filter(pk=proposal.pk)
        .first()
    )
    if locked is None:
        raise MatchError("This proposal no longer exists; reload the page.")
    if locked.state != MatchProposal.State.PROPOSED:
        raise MatchError(
            f"This proposal was already {MatchProposal.State(locked.state).label.lower()}."
        )
    return locked


def match_proposal_confirm(*, proposal: MatchProposal, by: Any) -> MatchProposal:
    """proposed -> confirmed: link the expectation to the deposit (matched_by the member), move
    the deposit's review to matched; audit `deposit.match.confirmed`."""
    with transaction.atomic():
        # Deposit first, then the expectation (the order the mirroring takes them in).
        deposit = Deposit.objects.select_for_update().get(pk=proposal.deposit_id)
        proposal = _lock_proposal(proposal)
        expected = proposal.expected
        if deposit.flashfx_status not in MATCHABLE_STATUSES:
            raise MatchError(
                f"A deposit that FlashFX reports as {deposit.flashfx_status} cannot be matched."
            )
        if deposit.review_state not in OPEN_REVIEW:
            raise MatchError(
                f"A deposit that is {Review(deposit.review_state).label.lower()} cannot be "
                "matched; only new or flagged deposits can."
            )
        already = ExpectedPayment.objects.filter(deposit=deposit).first()
        if already is not None:
            raise MatchError(f"This deposit is already matched to {already}.")
        expected.refresh_from_db()
        if expected.deposit_id is not None:
            raise MatchError("That expected payment was matched to another deposit meanwhile.")
        if not _claim(expected=expected, deposit=deposit, by=by):
            raise MatchError("That expected payment was matched to another deposit meanwhile.")
        try:
            deposit_review_move(
                deposit=deposit,
                to=Review.MATCHED,
                actor=by,
                details={"expected_payment": str(expected.code), "how": "confirmed by a person"},
            )
        except ReviewError as exc:  # the whole confirmation rolls back with it
            raise MatchError(str(exc)) from exc
        proposal.state = MatchProposal.State.CONFIRMED
        proposal.decided_by, proposal.decided_at = by, timezone.now()
        proposal.save(update_fields=["state", "decided_by", "decided_at"])
        audit.record(
            CONFIRMED,
            actor=by,
            obj=deposit,
            details={"expected_payment": str(expected.code), "reason": proposal.reason},
        )
    return proposal


def match_proposal_refuse(*, proposal: MatchProposal, by: Any) -> MatchProposal:
    """proposed -> refused: the pair is never proposed again; audit `deposit.match.refused`."""
    with transaction.atomic():
        proposal = _lock_proposal(proposal)
        proposal.state = MatchProposal.State.REFUSED
        proposal.decided_by, proposal.decided_at = by, timezone.now()
        proposal.save(update_fields=["state", "decided_by", "decided_at"])
        audit.record(
            REFUSED,
            actor=by,
            obj=proposal.deposit,
            details={"expected_payment": str(proposal.expected.code), "reason": proposal.reason},
        )
    return proposal


def expected_payment_remove(*, expected: ExpectedPayment, by: Any) -> None:
    """Remove an expected payment entered by mistake, while nothing matched it.

    Its every field goes into the audit event, so the trail still says what was expected and
    who took it back. Its open proposals go with it. A matched one cannot be removed: its
    deposit's review would lose what it was matched to (unmatch the deposit first by
    rejecting or flagging it, as staff would with any wrong match). Locks the row, so a match
    landing at the same moment wins or waits, never half of each."""
    with transaction.atomic():
        locked = ExpectedPayment.objects.select_for_update().filter(pk=expected.pk).first()
        if locked is None:
            raise MatchError("This expected payment was removed already.")
        if locked.deposit_id is not None:
            raise MatchError(
                "This expected payment is matched to a deposit already, so it cannot be removed."
            )
        details = {
            "code": str(locked.code),
            "payer_name": locked.payer_name,
            "amount": str(locked.amount),
            "currency": locked.currency,
            "reference": locked.reference,
            "due_on": locked.due_on.isoformat(),
            "sub_client": locked.sub_client.flashfx_id if locked.sub_client else "",
            "source": locked.source,
            "recorded_by": locked.created_by.get_username(),
            "recorded_at": locked.created_at.isoformat(),
            "open_proposals": locked.proposals.filter(state=MatchProposal.State.PROPOSED).count(),
        }
        audit.record(REMOVED, actor=by, obj=locked, details=details)
        locked.delete()  # its proposals cascade
