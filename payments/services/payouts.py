"""Payouts: proposed by one member, approved by others, sent to FlashFX exactly once.

The workflow (each move a compare-and-set on the Payout, a PayoutEvent and an audit event):

1. `payout_create` (a member with create_payout) validates everything before saving and asks
   for approval: AWAITING_APPROVAL with an Approval (payments/services/approvals.py) bound to
   the hash of exactly what will be sent (`payout_payload`), needing as many distinct
   approvers as the policy's tier says (payments/services/payout_policy.py). `payout_edit`
   (its maker, while it awaits approval) voids that approval and asks again; `payout_cancel`
   withdraws it.
2. `payout_approve` signs the approval; the signature that completes it runs `_approved` in the
   same transaction: the outbox row (what must be sent, with the hash) and APPROVED. The caller
   enqueues the send after commit (payments/tasks.py: payout_enqueue). Declines and expiry
   close the payout (DECLINED, EXPIRED).
3. `payout_submit` (the Celery task) claims the outbox row with a conditional UPDATE
   (approved -> submitting, attempts + 1) after recomputing the hash from the payout and the
   recipient as they are now: a mismatch (say, the recipient's bank details changed after
   approval) sends nothing, voids the approval and returns the payout to AWAITING_APPROVAL.
   Then one createWithdrawal with the payout's code as externalId and idempotencyKey
   (docs/flashfx.md §2.2, §2.3, §5.13). FlashFX's answer: SUBMITTED (the withdrawal mirrored
   and linked), SUBMIT_FAILED (a definite refusal, with FlashFX's code and message), or no
   answer (OutcomeUnknown, a 5xx, a crash): the row stays SUBMITTING for `payout_recover`.
4. `payout_recover` never creates blindly: it looks the withdrawal up by externalId first;
   found -> SUBMITTED; not found -> the same request again with the same idempotencyKey.
5. `withdrawals_changed` (the withdrawals mirror's on_change, whatever brought the news) links
   a new withdrawal whose externalId is a payout's code, and moves a SUBMITTING payout on.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from backoffice import audit
from flashfx.errors import FlashFXError, FlashFXRejected, FlashFXUnavailable
from mirrors.client import flashfx_client
from mirrors.registry import registry
from parties.models import Recipient, Sender, SubClient

from ..models import Approval, Payout, PayoutEvent, PayoutOutbox, Withdrawal
from . import approvals
from .payout_policy import payout_policy
from .sending import Workflow

log = logging.getLogger(__name__)

State = Payout.State
Box = PayoutOutbox.State

ACTION = "payout.send"
CREATE_PERMISSION = "payments.create_payout"
APPROVE_PERMISSION = "payments.approve_payout"
CENT = Decimal("0.01")
REFERENCE_MAX = 18  # Direct Entry (BECS) holds 18 characters (docs/flashfx.md §2.2)
# §1.4: FlashFX refuses placeholder values; a reference is never one of them.
PLACEHOLDERS = frozenset({"N/A", "NA", "NULL", "NIL", "NONE"})
PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
ACCOUNT_TYPES = ("BSB", "PAYID")  # an AUD payout goes to one of these (§3.3.1)
IN_FLIGHT = (State.APPROVED, State.SUBMITTING)
# The final FlashFX statuses that keep the fee (§3.3.3) and deserve a prominent notice.
PROBLEM_STATUSES = ("FAILED", "REFUNDED", "CANCELLED")
RESEND_CODE = "TECHNICAL_ISSUE"  # §3.3.4: the one cancellation that may be sent again


class PayoutError(Exception):
    """A payout step that cannot be done; the message says why, for the member.
    `field` names the form field at fault, when there is one."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RateLimited(FlashFXUnavailable):
    """FlashFX answered 429 (docs/flashfx.md §1.4: nothing was executed) during a send: the
    rows not sent went back to APPROVED for a later claim; try again after `retry_after`
    seconds. `outcomes`: what payouts_send would have returned for the rest."""

    def __init__(self, exc: FlashFXUnavailable, outcomes: dict[int, str]) -> None:
        super().__init__(
            exc.message, operation=exc.operation, retry_after=exc.retry_after, code=exc.code
        )
        self.outcomes = outcomes


# A payout of a batch is approved with its batch (payments/services/payout_batches.py, which
# registers here, at import, how the batch's approval binds a payout's hash): never one by one.
BatchBinding = Callable[[Payout, PayoutOutbox], bool]
_batch_binding: list[BatchBinding] = []


def register_batch_binding(binds: BatchBinding) -> None:
    _batch_binding[:] = [binds]


def _with_batch(payout: Payout) -> bool:
    """Approved through its batch: no approval of its own (until a void asks for one)."""
    return payout.batch_id is not None and payout.approval_id is None


def _batch_refusal(payout: Payout) -> str:
    return (
        f"This payout belongs to batch {payout.batch.code if payout.batch else '?'}: it is "
        "approved, declined or "
        "withdrawn with its batch."
    )


# --- What is sent, and what the approval is bound to ---------------------------------------


def recipient_name(recipient: Recipient) -> str:
    return (
        recipient.display_name
        or recipient.company_name
        or " ".join(n for n in (recipient.first_name, recipient.last_name) if n)
    )


def payout_payload(payout: Payout) -> dict[str, Any]:
    """Exactly what createWithdrawal will be sent, with the recipient's bank details as they are
    now (not only its id): what an approval's hash binds."""
    r = payout.recipient
    return {
        "operation": "createWithdrawal",
        "payout": payout.code,
        "amount": str(Decimal(payout.amount).quantize(CENT)),
        "currency": payout.currency,
        "recipient": {
            "id": r.flashfx_id,
            "name": recipient_name(r),
            "account_id_type": r.account_id_type,
            "bsb": r.bsb,
            "account_no": r.account_no,
            "payid": r.payid,
        },
        "reference": payout.reference,
        "reason": payout.reason,
        "sender": {"id": payout.sender.flashfx_id, "name": payout.sender.name}
        if payout.sender
        else None,
        "sub_client": {"id": payout.sub_client.flashfx_id, "name": payout.sub_client.full_name}
        if payout.sub_client
        else None,
    }


def withdrawal_input(payout: Payout) -> dict[str, Any]:
    """CreateWithdrawalInput (docs/flashfx.md §3.3.1) as stored in the outbox (the amount as a
    string; Decimal again when sent). The same request every time: a repeat with the same
    idempotencyKey must be the same input (§5.13)."""
    request: dict[str, Any] = {
        "amount": str(Decimal(payout.amount).quantize(CENT)),
        "currency": payout.currency,
        "recipientId": payout.recipient.flashfx_id,
        "externalReference": payout.reference,
        "externalId": payout.code,
        "idempotencyKey": payout.code,
        "reason": payout.reason,
    }
    if payout.sender:
        request["senderId"] = payout.sender.flashfx_id
    if payout.sub_client:
        request["subClientId"] = payout.sub_client.flashfx_id
    return request


def _summary(payout: Payout) -> str:
    r = payout.recipient
    account = f"PayID {r.payid}" if r.account_id_type == "PAYID" else f"BSB {r.bsb} {r.account_no}"
    return (
        f"Payout {payout.code}: {payout.currency} {payout.amount} to {recipient_name(r)} "
        f"({account}), reference {payout.reference!r}"
    )


# --- Validation -------------------------------------------------------------------------------


def reference_problem(reference: str) -> str | None:
    if not reference:
        return "Give a reference: the beneficiary sees it on their statement."
    if len(reference) > REFERENCE_MAX:
        return (
            f"At most {REFERENCE_MAX} characters: Direct Entry cuts the rest "
            f"(this one has {len(reference)})."
        )
    if not PRINTABLE_ASCII.fullmatch(reference):
        return (
            "Plain ASCII letters, digits, spaces and punctuation only (FlashFX accepts no other)."
        )
    if reference.strip().upper() in PLACEHOLDERS:
        return "A placeholder such as N/A is refused by FlashFX; give a real reference."
    return None


def _validate(
    *,
    recipient: Recipient | None,
    sender: Sender | None,
    sub_client: SubClient | None,
    amount: Any,
    currency: str,
    reference: str,
    reason: str,
) -> None:
    policy = payout_policy()
    if recipient is None:
        raise PayoutError("Choose a recipient.", field="recipient")
    if not recipient.flashfx_id:
        raise PayoutError("This recipient is not at FlashFX yet.", field="recipient")
    if recipient.deleted_at is not None:
        raise PayoutError("This recipient was deleted.", field="recipient")
    if recipient.account_id_type not in ACCOUNT_TYPES or recipient.currency != policy.currency:
        raise PayoutError(
            "Payouts go to Australian AUD accounts (BSB and account number, or PayID); "
            "use an international payment for this recipient.",
            field="recipient",
        )
    if sender is not None and sub_client is not None:
        raise PayoutError(
            "FlashFX reports one sender: choose a sender or a sub-client, not both.",
            field="sub_client",
        )
    if sender is None and sub_client is None:
        raise PayoutError(
            "Choose the sender the beneficiary sees (\u201cPayment from \u2026\u201d), or a sub-client.",
            field="sender",
        )
    if sender is not None and not sender.flashfx_id:
        raise PayoutError("This sender is not at FlashFX yet.", field="sender")
    if sender is not None and sender.deleted_at is not None:
        raise PayoutError("This sender was deleted.", field="sender")
    if currency != policy.currency:
        raise PayoutError(
            f"Payouts are in {policy.currency}; use an international payment for {currency}.",
            field="currency",
        )
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise PayoutError("The amount must be a number.", field="amount")
    if amount <= 0:
        raise PayoutError("The amount must be more than zero.", field="amount")
    if amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise PayoutError("The amount can have at most two decimal places.", field="amount")
    if amount >= Decimal("1e12"):
        raise PayoutError("That amount is too large.", field="amount")
    if problem := reference_problem(reference):
        raise PayoutError(problem, field="reference")
    if reason not in Payout.Reason.values:
        raise PayoutError("Choose the reason for the payout.", field="reason")


# --- Moves ------------------------------------------------------------------------------------


# Compare-and-set moves with their PayoutEvent and audit event (payments/services/sending.py).
WORKFLOW = Workflow(model=Payout, event_model=PayoutEvent, owner="payout", audit_prefix="payout")
_event = WORKFLOW.event
_move = WORKFLOW.move


def _move_many(
    payouts: list[Payout],
    *,
    old: str,
    to: str,
    describe: Callable[[Payout], tuple[str, dict[str, Any]]],
    actor: Any = None,
) -> None:
    """`_move` for payouts this transaction holds locked in state `old`, each with the detail
    `describe` gives it: one UPDATE, one INSERT of their events, one append to the audit trail."""
    if not payouts:
        return
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        moved = Payout.objects.filter(pk__in=[p.pk for p in payouts], state=old).update(
            state=to, updated_at=now
        )
        if moved != len(payouts):  # they are locked: only a broken invariant gets here
            raise RuntimeError(f"moved {moved} of {len(payouts)} locked payouts from {old}")
        events, entries = [], []
        for payout in payouts:
            detail, details = describe(payout)
            payout.state, payout.updated_at = to, now
            events.append(
                PayoutEvent(
                    payout=payout, from_state=old, to_state=to, actor=actor, detail=detail[:500]
                )
            )
            entries.append(
                audit.entry(
                    f"payout.{to}",
                    actor=actor,
                    obj=payout,
                    before={"state": old},
                    after={"state": to},
                    details={"code": payout.code, "detail": detail, **details},
                )
            )
        PayoutEvent.objects.bulk_create(events)
        audit.append_many(entries)


def _ask_approval(payout: Payout, *, by: Any) -> Approval:
    policy = payout_policy()
    return approvals.approval_request(
        action=ACTION,
        payload=payout_payload(payout),
        summary=_summary(payout),
        permission=APPROVE_PERMISSION,
        requested_by=by,
        required=policy.approvers_required(Decimal(payout.amount)),
        ttl_hours=policy.ttl_hours,
    )


def payout_create(
    *,
    by: Any,
    recipient: Recipient | None,
    amount: Any,
    reference: str,
    reason: str,
    sender: Sender | None = None,
    sub_client: SubClient | None = None,
    currency: str = "AUD",
    resent_from: Payout | None = None,
) -> Payout:
    """A new payout, AWAITING_APPROVAL, with its Approval; nothing is sent. PayoutError says
    why not (and which field)."""
    if not by.has_perm(CREATE_PERMISSION):
        raise PayoutError("You do not have permission to start payouts.")
    reference = (reference or "").strip()
    _validate(
        recipient=recipient,
        sender=sender,
        sub_client=sub_client,
        amount=amount,
        currency=currency,
        reference=reference,
        reason=reason,
    )
    if recipient is None:  # refused by the checks above already; this tells the type checker
        raise PayoutError("Choose a recipient.")
    with transaction.atomic():
        payout = Payout.objects.create(
            recipient=recipient,
            sender=sender,
            sub_client=sub_client,
            amount=amount,
            currency=currency,
            reference=reference,
            reason=reason,
            maker=by,
            resent_from=resent_from,
        )
        payout.approval = _ask_approval(payout, by=by)
        payout.save(update_fields=["approval"])
        detail = f"sent again from {resent_from.code}" if resent_from else ""
        _event(payout, old="", to=State.AWAITING_APPROVAL, actor=by, detail=detail)
        audit.record(
            "payout.requested",
            actor=by,
            obj=payout,
            after={"state": payout.state},
            details={
                "code": payout.code,
                "payload": payout.approval.payload,
                "payload_hash": payout.approval.payload_hash,
                "approvers_required": payout.approval.required,
                "resent_from": resent_from.code if resent_from else None,
            },
        )
    return payout


def payout_edit(*, payout: Payout, by: Any, **changes: Any) -> Payout:
    """Change a payout awaiting approval (its maker only): the approval and its signatures are
    voided and a new one is asked for, bound to the new payload."""
    fields = ("recipient", "sender", "sub_client", "amount", "reference", "reason")
    with transaction.atomic():
        # Lock order as in approving (approval, then payout): an approver signing at this
        # moment waits for the edit, then finds the approval cancelled.
        if payout.approval_id is not None:
            Approval.objects.select_for_update().filter(pk=payout.approval_id).first()
        locked = Payout.objects.select_for_update().get(pk=payout.pk)
        if _with_batch(locked):
            raise PayoutError(_batch_refusal(locked))
        if locked.maker_id != by.pk or not by.has_perm(CREATE_PERMISSION):
            raise PayoutError("Only the member who started this payout can change it.")
        if locked.state != State.AWAITING_APPROVAL:
            raise PayoutError(
                f"This payout is {locked.get_state_display().lower()}; only one awaiting "
                "approval can be changed."
            )
        before = payout_payload(locked)
        for name in fields:
            if name in changes:
                setattr(locked, name, changes[name])
        locked.reference = (locked.reference or "").strip()
        _validate(
            recipient=locked.recipient,
            sender=locked.sender,
            sub_client=locked.sub_client,
            amount=locked.amount,
            currency=locked.currency,
            reference=locked.reference,
            reason=locked.reason,
        )
        after = payout_payload(locked)
        if approvals.canonical(before) == approvals.canonical(after):
            return locked  # nothing changed: the approval stands
        if locked.approval is not None:
            approvals.approval_void(locked.approval, reason="The payout was changed.", actor=by)
        locked.updated_at = timezone.now()
        locked.save()
        locked.approval = _ask_approval(locked, by=by)
        locked.save(update_fields=["approval"])
        changed = sorted(k for k in after if before.get(k) != after.get(k))
        _event(
            locked,
            old=State.AWAITING_APPROVAL,
            to=State.AWAITING_APPROVAL,
            actor=by,
            detail=f"changed ({', '.join(changed)}); approvals so far voided, asked again",
        )
        audit.record(
            "payout.edited",
            actor=by,
            obj=locked,
            before=approvals.canonical(before),
            after=approvals.canonical(after),
            details={"code": locked.code, "payload_hash": locked.approval.payload_hash},
        )
    return locked


def payout_cancel(*, payout: Payout, by: Any) -> Payout:
    """AWAITING_APPROVAL -> CANCELLED by its maker; the approval is voided."""
    payout.refresh_from_db()
    if _with_batch(payout):
        raise PayoutError(_batch_refusal(payout))
    if payout.maker_id != by.pk:
        raise PayoutError("Only the member who started this payout can withdraw it.")
    with transaction.atomic():
        if not _move(
            payout,
            from_states=(State.AWAITING_APPROVAL,),
            to=State.CANCELLED,
            actor=by,
            detail="withdrawn by its maker",
        ):
            raise PayoutError("Only a payout awaiting approval can be withdrawn.")
        if payout.approval is not None:
            approvals.approval_void(payout.approval, reason="Withdrawn by its maker.", actor=by)
    return payout


# --- Approving --------------------------------------------------------------------------------


def approval_blocker(payout: Payout, user: Any) -> str | None:
    """Why `user` may not approve or decline this payout now, or None if they may."""
    if not user.has_perm(APPROVE_PERMISSION):
        return "Your role does not approve payouts."
    if _with_batch(payout):
        return _batch_refusal(payout)
    if payout.maker_id == user.pk:
        return "You started this payout; other members must approve it."
    approval = payout.approval
    if payout.state != State.AWAITING_APPROVAL or approval is None:
        return f"This payout is {payout.get_state_display().lower()}."
    return approvals.signing_blocker(approval, user)


def payout_approve(*, payout: Payout, by: Any) -> Payout:
    """Sign the payout's approval; the last signature needed makes it APPROVED with its outbox
    row, in that transaction. The caller enqueues the send after commit. PayoutError says why
    not."""
    payout = Payout.objects.select_related("approval").get(pk=payout.pk)
    if _with_batch(payout):
        raise PayoutError(_batch_refusal(payout))
    if payout.maker_id == by.pk:
        raise PayoutError("You started this payout; other members must approve it.")
    if payout.state != State.AWAITING_APPROVAL or payout.approval is None:
        raise PayoutError(f"This payout is {payout.get_state_display().lower()}.")
    # The hash must still be what the payout and its recipient are now: a recipient whose bank
    # details changed since the request is asked about again, not approved.
    if approvals.payload_hash(payout_payload(payout)) != payout.approval.payload_hash:
        _reask(payout, reason="What would be sent changed since approval was asked for.")
        raise PayoutError(
            "What would be sent changed since approval was asked for (e.g. the recipient's bank "
            "details); approval has been asked for again. Check it and approve again."
        )
    try:
        approvals.approval_approve(approval=payout.approval, by=by)
    except approvals.ApprovalError as exc:
        raise PayoutError(str(exc)) from None
    payout.refresh_from_db()
    if payout.state == State.AWAITING_APPROVAL:  # more signatures needed
        _event(
            payout,
            old=State.AWAITING_APPROVAL,
            to=State.AWAITING_APPROVAL,
            actor=by,
            detail=(
                f"approved by {by.get_username()} "
                f"({payout.approval.signatures.count()} of {payout.approval.required})"
            ),
        )
    return payout


def payout_decline(*, payout: Payout, by: Any, note: str = "") -> Payout:
    """Decline the payout's approval: DECLINED (through the approval's on_close)."""
    payout = Payout.objects.select_related("approval").get(pk=payout.pk)
    if _with_batch(payout):
        raise PayoutError(_batch_refusal(payout))
    if payout.maker_id == by.pk:
        raise PayoutError("You started this payout; withdraw it instead.")
    if payout.state != State.AWAITING_APPROVAL or payout.approval is None:
        raise PayoutError(f"This payout is {payout.get_state_display().lower()}.")
    try:
        approvals.approval_decline(approval=payout.approval, by=by, note=note)
    except approvals.ApprovalError as exc:
        raise PayoutError(str(exc)) from None
    payout.refresh_from_db()
    return payout


def payouts_approve_bulk(*, codes: list[str], by: Any) -> tuple[list[Payout], list[str]]:
    """Approve each of these payouts that `by` may approve one by one, each on its own (one
    refusal does not stop the rest); what was approved, and why each other one was not."""
    done: list[Payout] = []
    refused: list[str] = []
    for code in dict.fromkeys(codes):
        payout = Payout.objects.select_related("approval").filter(code=code).first()
        if payout is None:
            refused.append(f"{code}: no such payout.")
            continue
        if blocker := approval_blocker(payout, by):
            refused.append(f"{code}: {blocker}")
            continue
        try:
            done.append(payout_approve(payout=payout, by=by))
        except PayoutError as exc:
            refused.append(f"{code}: {exc}")
    return done, refused


def _approved(approval: Approval) -> None:
    """The last signature: the outbox row (what must be sent, with the hash) and APPROVED, in
    the deciding transaction."""
    payout = (
        Payout.objects.select_for_update(of=("self",))
        .select_related("recipient")
        .get(approval=approval)
    )
    PayoutOutbox.objects.create(
        payout=payout, request=withdrawal_input(payout), payload_hash=approval.payload_hash
    )
    signers = ", ".join(u.get_username() for u in approvals.approval_signers(approval))
    moved = _move(
        payout,
        from_states=(State.AWAITING_APPROVAL,),
        to=State.APPROVED,
        actor=approval.decided_by,
        detail=f"approved by {signers}",
        details={"approval": str(approval.code), "payload_hash": approval.payload_hash},
    )
    if not moved:  # the approval and the payout moved together or not at all
        raise approvals.ApprovalError("This payout is no longer awaiting approval.")


def _closed(approval: Approval) -> None:
    payout = Payout.objects.get(approval=approval)
    expired = approval.state == Approval.State.EXPIRED
    _move(
        payout,
        from_states=(State.AWAITING_APPROVAL,),
        to=State.EXPIRED if expired else State.DECLINED,
        actor=None if expired else approval.decided_by,
        detail="not approved in time" if expired else (approval.decision_note or "declined"),
        details={"approval": str(approval.code), "note": approval.decision_note},
        error_message=(approval.decision_note or "")[:500],
    )


approvals.register_action(ACTION, on_approve=_approved, on_close=_closed)


def _reask(payout: Payout, *, reason: str, from_states: tuple[str, ...] = ()) -> None:
    """The approval no longer matches the payout: void it and ask again (AWAITING_APPROVAL),
    requested by the maker as before. Inside the caller's transaction when there is one."""
    with transaction.atomic():
        payout = (
            Payout.objects.select_for_update(of=("self",))
            .select_related("approval")
            .get(pk=payout.pk)
        )
        if payout.approval is not None:
            approvals.approval_void(payout.approval, reason=reason)
        old = payout.state
        payout.approval = _ask_approval(payout, by=payout.maker)
        payout.save(update_fields=["approval"])
        if old == State.AWAITING_APPROVAL:
            _event(payout, old=old, to=old, actor=None, detail=f"{reason} Asked again.")
            audit.record(
                "payout.reasked",
                obj=payout,
                details={"code": payout.code, "reason": reason},
            )
        else:
            _move(
                payout,
                from_states=from_states,
                to=State.AWAITING_APPROVAL,
                detail=f"{reason} Nothing was sent; approval asked for again.",
                details={"payload_hash": payout.approval.payload_hash},
            )


# --- Sending, exactly once --------------------------------------------------------------------


def _wire(request: dict[str, Any]) -> dict[str, Any]:
    return {**request, "amount": Decimal(request["amount"])}


def _locked(payout_id: int) -> Payout:
    """The payout, its row locked (not its recipient's: FOR UPDATE OF the payout alone), read
    with all that its hash is made of, as it is now."""
    return (
        Payout.objects.select_for_update(of=("self",))
        .select_related("approval", "recipient", "sender", "sub_client")
        .get(pk=payout_id)
    )


def _still_approved(payout: Payout, outbox: PayoutOutbox) -> bool:
    """`payout` as _locked read it: still approved, and what would be sent is what was."""
    if _with_batch(payout):
        return bool(_batch_binding) and _batch_binding[0](payout, outbox)
    approval = payout.approval
    return (
        approval is not None
        and approval.state == Approval.State.APPROVED
        and approvals.payload_intact(approval)
        and approval.payload_hash == outbox.payload_hash
        and approvals.payload_hash(payout_payload(payout)) == outbox.payload_hash
    )


def _void_outbox(outbox: PayoutOutbox, payout: Payout, *, from_states: tuple[str, ...]) -> str:
    PayoutOutbox.objects.filter(pk=outbox.pk).update(state=Box.VOIDED, done_at=timezone.now())
    _reask(
        payout,
        reason="What would be sent no longer matches what was approved (e.g. the recipient's "
        "bank details changed).",
        from_states=from_states,
    )
    return Box.VOIDED


def payout_submit(outbox_id: int) -> str:
    """Send this outbox row (`payouts_send`) and say what became of it."""
    return payouts_send(outbox_id)[outbox_id]


def outbox_state(outbox_id: int) -> str:
    state = PayoutOutbox.objects.filter(pk=outbox_id).values_list("state", flat=True).first()
    return state or "missing"


def payouts_send(outbox_id: int, *, group: int | None = None) -> dict[int, str]:
    """Claim this outbox row and up to `group` - 1 other approved ones, oldest first, skipping
    rows another transaction holds (a sender, an edit): APPROVED -> SUBMITTING, committed before
    any call. Then one createWithdrawal each, with the payout's code as externalId and
    idempotencyKey, and the answers recorded together. Returns each row claimed (or voided, or
    found sent already) -> its outbox state afterwards, "unknown" when FlashFX's answer never
    came; and this row -> its state, whoever sent it.

    A group shares the database work (one claim, one record of the answers: about five
    statements a payout instead of thirty) and the worker's per-task cost: payouts approved
    one by one go out at close to the rate of bare calls (bench/payouts.py). A crash anywhere
    leaves each claimed row SUBMITTING for payout_recover, exactly as for one."""
    state = outbox_state(outbox_id)
    if state != Box.APPROVED:
        # Sent already (often in an earlier task's group), voided, or gone: one read, no more.
        return {outbox_id: state}
    claimed, outcomes = _claim(outbox_id, group or settings.PAYOUT_SEND_GROUP)
    outcomes |= _send(claimed)
    if outbox_id not in outcomes:  # held by another sender when we looked
        outcomes[outbox_id] = outbox_state(outbox_id)
    return outcomes


def _claim(outbox_id: int, group: int) -> tuple[list[tuple[PayoutOutbox, Payout]], dict[int, str]]:
    outcomes: dict[int, str] = {}
    claim: list[tuple[PayoutOutbox, Payout]] = []
    with transaction.atomic():
        # The outbox rows first (this task's own first), alone: the usual answer, for a task
        # whose row went in an earlier task's group, is none, and this read costs little.
        rows = list(
            PayoutOutbox.objects.select_for_update(skip_locked=True)
            .filter(state=Box.APPROVED)
            .annotate(later=Case(When(pk=outbox_id, then=Value(0)), default=Value(1)))
            .order_by("later", "pk")[:group]
        )
        if not rows:
            return claim, outcomes
        # Then their payouts, locked, with all that a payout's hash is made of, as it is now.
        payouts = (
            Payout.objects.select_for_update(of=("self",))
            .select_related("approval", "recipient", "sender", "sub_client")
            .in_bulk([outbox.payout_id for outbox in rows])
        )
        for outbox in rows:
            payout = outbox.payout = payouts[outbox.payout_id]
            if payout.withdrawal_id is not None:
                outcomes[outbox.pk] = _sent_already(outbox, payout)
            elif not _still_approved(payout, outbox):
                outcomes[outbox.pk] = _void_outbox(outbox, payout, from_states=(State.APPROVED,))
            else:
                claim.append((outbox, payout))
        if not claim:
            return claim, outcomes
        now = timezone.now()
        claimed = PayoutOutbox.objects.filter(
            pk__in=[outbox.pk for outbox, _ in claim], state=Box.APPROVED
        ).update(state=Box.SUBMITTING, attempts=F("attempts") + 1, claimed_at=now)
        if claimed != len(claim):  # the rows are locked: only a broken invariant gets here
            raise RuntimeError(f"claimed {claimed} of {len(claim)} locked outbox rows")
        attempts = {}
        for claimed_row, payout in claim:
            claimed_row.state, claimed_row.attempts, claimed_row.claimed_at = (
                Box.SUBMITTING,
                claimed_row.attempts + 1,
                now,
            )
            attempts[payout.pk] = claimed_row.attempts
        _move_many(
            [payout for _, payout in claim],
            old=State.APPROVED,
            to=State.SUBMITTING,
            describe=lambda p: (
                f"createWithdrawal, attempt {attempts[p.pk]}",
                {"attempt": attempts[p.pk]},
            ),
        )
    return claim, outcomes


def _sent_already(outbox: PayoutOutbox, payout: Payout) -> str:
    """FlashFX already has a withdrawal under this code (a call from an earlier approval that
    recovery could not see yet): never a second one."""
    PayoutOutbox.objects.filter(pk=outbox.pk).update(state=Box.SUBMITTED, done_at=timezone.now())
    _move(
        payout,
        from_states=(State.APPROVED,),
        to=State.SUBMITTED,
        detail="FlashFX already has a withdrawal under this code; nothing sent again",
    )
    return Box.SUBMITTED


def _send(claimed: list[tuple[PayoutOutbox, Payout]]) -> dict[int, str]:
    """The calls, one per claimed row, with its stored request and the payout's code as its
    key; what FlashFX accepted is recorded even when something unexpected stops the loop."""
    outcomes: dict[int, str] = {}
    accepted: list[tuple[PayoutOutbox, Payout, Any]] = []
    limited: FlashFXUnavailable | None = None
    asked_at = timezone.now()  # the replies' versions are at least this fresh
    try:
        for i, (outbox, payout) in enumerate(claimed):
            try:
                wire = flashfx_client().create_withdrawal(_wire(outbox.request))
            except FlashFXRejected as exc:
                outcomes[outbox.pk] = _failed(outbox, payout, exc)
            except FlashFXError as exc:
                if _rate_limited(exc):  # no more calls while limited: the rest wait
                    limited = exc  # type: ignore[assignment]
                    outcomes |= _release(claimed[i:], exc)
                    break
                outcomes[outbox.pk] = _no_answer(outbox, payout, exc)
            else:
                accepted.append((outbox, payout, wire))
    finally:
        if accepted:
            outcomes |= _submitted(accepted, asked_at=asked_at, source="reply")
    if limited is not None:
        raise RateLimited(limited, outcomes)
    return outcomes


def _rate_limited(exc: FlashFXError) -> bool:
    return isinstance(exc, FlashFXUnavailable) and (
        exc.status_code == 429 or exc.code == "TOO_MANY_REQUESTS"
    )


def _release(rows: list[tuple[PayoutOutbox, Payout]], exc: FlashFXError) -> dict[int, str]:
    """429: FlashFX executed nothing (§1.4), so these claimed rows, the limited call's and the
    ones not called yet, go back to APPROVED: a later claim sends each, with the same key."""
    note = f"{exc.code or 'HTTP 429'}: {exc.message}"[:500]
    with transaction.atomic():
        PayoutOutbox.objects.filter(
            pk__in=[outbox.pk for outbox, _ in rows], state=Box.SUBMITTING
        ).update(state=Box.APPROVED, last_error=note)
        _move_many(
            [payout for _, payout in rows],
            old=State.SUBMITTING,
            to=State.APPROVED,
            describe=lambda p: ("FlashFX is limiting requests (429); nothing sent, sent later", {}),
        )
    return {outbox.pk: Box.APPROVED for outbox, _ in rows}


def _no_answer(outbox: PayoutOutbox, payout: Payout, exc: FlashFXError) -> str:
    return WORKFLOW.no_answer(outbox, payout, exc, operation="createWithdrawal")


def _failed(outbox: PayoutOutbox, payout: Payout, exc: FlashFXRejected) -> str:
    return WORKFLOW.failed(outbox, payout, exc)


def _submitted(
    accepted: list[tuple[PayoutOutbox, Payout, Any]], *, asked_at: datetime, source: str
) -> dict[int, str]:
    """FlashFX has them: mirror the withdrawals, whose on_change (withdrawals_changed) links
    each to its payout and moves it to SUBMITTED; a payout whose withdrawal the mirror had in
    this version already (a webhook got here first, so nothing changed) is linked here. Each
    outbox row -> its state afterwards.

    The versions are dated `asked_at`, when the first call of the group left, not when the
    answers came: a webhook for a move FlashFX made meanwhile is newer and wins (as sync dates
    a window's rows by when its read began)."""
    payouts = {payout.pk: wire.id for _, payout, wire in accepted}
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                registry.get("withdrawals").apply_many(
                    [wire for _, _, wire in accepted], observed_at=asked_at, source=source
                )
                waiting = list(Payout.objects.filter(pk__in=payouts, state=State.SUBMITTING))
                if waiting:
                    mirrored = Withdrawal.objects.in_bulk(
                        [payouts[p.pk] for p in waiting], field_name="flashfx_id"
                    )
                    _link_many([(p, mirrored[payouts[p.pk]]) for p in waiting], source=source)
                return dict(
                    PayoutOutbox.objects.filter(pk__in=[o.pk for o, _, _ in accepted]).values_list(
                        "pk", "state"
                    )
                )
        except IntegrityError:
            # A webhook mirrored one of them between our read and our insert: once more,
            # and it is an update.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _link_many(pairs: list[tuple[Payout, Withdrawal]], *, source: str) -> None:
    """Link each mirrored withdrawal to its payout, and SUBMITTING -> SUBMITTED; decided on
    the payouts as they are under lock (idempotent: a payout linked and moved on is left)."""
    withdrawal_of = {payout.pk: withdrawal for payout, withdrawal in pairs}
    locked = list(Payout.objects.select_for_update(of=("self",)).filter(pk__in=withdrawal_of))
    linking, moving = [], []
    for payout in locked:
        withdrawal = withdrawal_of[payout.pk]
        if payout.withdrawal_id is None:
            payout.withdrawal = withdrawal
            linking.append(payout)
        elif payout.withdrawal_id != withdrawal.pk:
            log.error("payout %s: a second withdrawal %s", payout.code, withdrawal.flashfx_id)
            continue
        # Not sent by us (yet): payout_submit sees the link and sends nothing; or moved on
        # already: a later status of the same withdrawal.
        if payout.state == State.SUBMITTING:
            moving.append(payout)
    if linking:
        Payout.objects.bulk_update(linking, ["withdrawal"])
    if not moving:
        return
    PayoutOutbox.objects.filter(payout__in=moving, state=Box.SUBMITTING).update(
        state=Box.SUBMITTED, done_at=timezone.now(), last_error=""
    )

    def describe(payout: Payout) -> tuple[str, dict[str, Any]]:
        w = withdrawal_of[payout.pk]
        return (
            f"FlashFX withdrawal {w.flashfx_id} ({w.flashfx_status})",
            {"withdrawal": w.flashfx_id, "status": w.flashfx_status, "source": source},
        )

    _move_many(moving, old=State.SUBMITTING, to=State.SUBMITTED, describe=describe)


def settle_seconds() -> float:
    """How long after a claim a call may still be running at FlashFX: recovery waits this long
    so that a request still being executed when our read timed out has finished."""
    return settings.FLASHFX_CONNECT_TIMEOUT + settings.FLASHFX_READ_TIMEOUT + 5


def payout_recover(outbox_id: int) -> str:
    """A SUBMITTING outbox row (no answer, or its worker died at any point): look the
    withdrawal up at FlashFX by externalId first; found -> SUBMITTED; not found -> the same
    request again with the same idempotencyKey. Never a blind create. "wait" while the last
    call may still be running; FlashFXUnavailable on the look-up propagates (retry later)."""
    outbox = PayoutOutbox.objects.get(pk=outbox_id)
    if outbox.state != Box.SUBMITTING:
        return outbox.state
    if outbox.claimed_at and outbox.claimed_at > timezone.now() - timedelta(
        seconds=settle_seconds()
    ):
        return "wait"
    payout = Payout.objects.select_related("approval").get(pk=outbox.payout_id)
    asked_at = timezone.now()
    found = flashfx_client().withdrawals(externalId=payout.code)
    if found:
        if len(found) > 1:  # externalId is not unique at FlashFX (§5.14); ours is one payout
            log.error("payout %s: %d withdrawals carry its code", payout.code, len(found))
        first = min(found, key=lambda w: (w.created_at or timezone.now(), w.id))
        audit.record(
            "payout.found",
            obj=payout,
            details={"code": payout.code, "withdrawal": first.id, "count": len(found)},
        )
        return _submitted([(outbox, payout, first)], asked_at=asked_at, source="payout check")[
            outbox.pk
        ]
    with transaction.atomic():
        locked = PayoutOutbox.objects.select_for_update().get(pk=outbox.pk)
        if locked.state != Box.SUBMITTING or locked.claimed_at != outbox.claimed_at:
            return locked.state  # another recovery got here first
        payout = _locked(payout.pk)
        if not _still_approved(payout, locked):
            # Not at FlashFX, and no longer what was approved: it is never sent.
            return _void_outbox(locked, payout, from_states=(State.SUBMITTING,))
        PayoutOutbox.objects.filter(pk=locked.pk).update(
            attempts=F("attempts") + 1, claimed_at=timezone.now()
        )
        locked.refresh_from_db()
        _event(
            payout,
            old=State.SUBMITTING,
            to=State.SUBMITTING,
            actor=None,
            detail=f"not found at FlashFX; createWithdrawal again with the same key, attempt {locked.attempts}",
        )
        audit.record(
            "payout.resubmitting",
            obj=payout,
            details={"code": payout.code, "attempt": locked.attempts},
        )
    return _send([(locked, payout)])[locked.pk]


def payouts_due(*, stuck_after: timedelta) -> tuple[list[int], list[int]]:
    """For the sweep: outbox rows approved but never claimed, and rows left submitting."""
    before = timezone.now() - stuck_after
    approved = list(
        PayoutOutbox.objects.filter(state=Box.APPROVED, created_at__lte=before).values_list(
            "pk", flat=True
        )
    )
    submitting = list(
        PayoutOutbox.objects.filter(state=Box.SUBMITTING, claimed_at__lte=before).values_list(
            "pk", flat=True
        )
    )
    return approved, submitting


# --- FlashFX's news ---------------------------------------------------------------------------


def withdrawals_changed(changes: list) -> None:
    """A withdrawal was mirrored or its status moved (reply, webhook, sync; in that
    transaction): a new one whose externalId is a payout's code is linked to it, and a payout
    still SUBMITTING moves to SUBMITTED (the news came before our reply was recorded)."""
    ours = [c.obj for c in changes if (c.obj.external_id or "").startswith("PO-")]
    if not ours:
        return
    # One read for a whole sync window; a payout linked and past SUBMITTING needs nothing.
    by_code = {p.code: p for p in Payout.objects.filter(code__in={w.external_id for w in ours})}
    pairs = []
    for withdrawal in ours:
        payout = by_code.get(withdrawal.external_id)
        if payout is None:
            continue
        if payout.withdrawal_id == withdrawal.pk and payout.state != State.SUBMITTING:
            continue
        pairs.append((payout, withdrawal))
    if pairs:
        _link_many(pairs, source="mirror")


# --- Send again -------------------------------------------------------------------------------


def resend_allowed(payout: Payout) -> bool:
    """FlashFX cancelled it for a technical issue: it may go again as a new payout (§3.3.4)."""
    w = payout.withdrawal
    return w is not None and w.flashfx_status == "CANCELLED" and w.reject_code == RESEND_CODE


def payout_send_again(*, payout: Payout, by: Any) -> Payout:
    """A copy with a new code, through approval again (only after a TECHNICAL_ISSUE
    cancellation, and only once)."""
    payout = Payout.objects.select_related("withdrawal").get(pk=payout.pk)
    if not resend_allowed(payout):
        raise PayoutError(
            "Only a payout FlashFX cancelled for a technical issue can be sent again."
        )
    if payout.resent_as.exists():
        again = payout.resent_as.first()
        raise PayoutError(f"This payout was already sent again as {again.code if again else '?'}.")
    try:
        with transaction.atomic():
            return payout_create(
                by=by,
                recipient=payout.recipient,
                sender=payout.sender,
                sub_client=payout.sub_client,
                amount=payout.amount,
                currency=payout.currency,
                reference=payout.reference,
                reason=payout.reason,
                resent_from=payout,
            )
    except IntegrityError:
        raise PayoutError("This payout could not be copied; try again.") from None
