"""Batch payouts (docs/batch-payouts.md): a checked file becomes payouts approved as one unit
and sent through the payout pipeline (payments/services/payouts.py), each exactly once.

1. `batch_upload` stores the file as uploaded and checks it (payments/services/batch_file.py);
   nothing else is created. `batch_recheck` checks the stored file again.
2. `batch_create` checks it once more and, if every row is clean (or the maker chose to drop
   the bad ones), in one transaction: the PayoutBatch, a PayoutBatchRow per row of the file
   (dropped rows with their errors), a payout AWAITING_APPROVAL per row naming an existing
   recipient, and one Approval (action "payout.batch") for the whole batch, its tier from the
   batch's total (payout_policy). A row with bank details gets its payout when the batch is
   sent, once its recipient exists at FlashFX; its code is reserved now.
3. What the approval binds: every payout's own hash (`row_payload`: code, amount, currency,
   the bank account, reference, reason, sender), listed in the approval's payload. Approving
   compares them with the payouts and recipients as they are now: any change voids the
   approval and asks again. The last approval, in its transaction, moves every payout to
   APPROVED and writes their outbox rows (bulk: a constant number of statements); the caller
   enqueues the sending after commit (payments/tasks.py: payout_batch_enqueue).
4. Sending is the payout pipeline's (`payouts.payouts_send`: claim under SKIP LOCKED in
   groups of PAYOUT_SEND_GROUP, createWithdrawal with the payout's code as externalId and
   idempotencyKey, recovery by look-up before any resend, the sweeps). `_binds` is how the
   pipeline's last check (`_still_approved`) accepts a batch payout: the batch's approval is
   approved, intact, and lists this payout's hash, which is what the payout is now.
   `batch_prepare` first makes the recipients of rows with bank details at FlashFX, each once
   (looked up by our externalId before any create), and their payouts, APPROVED with outbox
   rows bound to the hashes approved. `batch_send_next` feeds the pipeline one group at a time.
5. `batch_settle` marks a sending batch DONE when every payout is final for us (FlashFX has
   it, refused it, or it was closed); FlashFX's statuses keep arriving through the mirror.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from backoffice import audit
from mirrors.client import flashfx_client
from mirrors.registry import registry
from parties.models import Recipient, Sender
from parties.services.calls import PartyError, PartyRefused
from parties.services.recipients import recipient_create

from ..models import (
    Approval,
    Payout,
    PayoutBatch,
    PayoutBatchFile,
    PayoutBatchRow,
    PayoutEvent,
    PayoutOutbox,
    new_payout_code,
)
from . import approvals, payouts
from .batch_file import (
    BatchFileError,
    BatchRow,
    CellError,
    ParsedFile,
    Validation,
    _payee,
    parse,
    validate,
)
from .payout_policy import payout_policy

ACTION = "payout.batch"
CREATE_PERMISSION = payouts.CREATE_PERMISSION
APPROVE_PERMISSION = payouts.APPROVE_PERMISSION
State = PayoutBatch.State
PState = Payout.State
Box = PayoutOutbox.State
# A payout is final for its batch when nothing more is sent for it.
FINAL = (PState.SUBMITTED, PState.SUBMIT_FAILED, PState.DECLINED, PState.EXPIRED, PState.CANCELLED)
CLOSED = (State.DONE, State.DECLINED, State.EXPIRED, State.CANCELLED)
# A result file's cell starting with one of these is a formula to a spreadsheet: quoted.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PREPARING = "preparing"  # a row with bank details whose payout is not made yet

__all__ = [
    "BatchError",
    "BatchFileError",
    "BatchProgress",
    "ResultRow",
    "batch_approval_blocker",
    "batch_approve",
    "batch_cancel",
    "batch_create",
    "batch_decline",
    "batch_prepare",
    "batch_rows_to_prepare",
    "batch_progress",
    "batch_recheck",
    "batch_result_csv",
    "batch_result_rows",
    "batch_send_next",
    "batch_settle",
    "batch_upload",
    "batches_due",
]


class BatchError(Exception):
    """A batch step that cannot be done; the message says why, for the member. `validation`
    is the check that refused it, when a row's problems did."""

    def __init__(
        self, message: str, *, validation: Validation | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.validation = validation
        self.field = field


@dataclass(frozen=True)
class BatchProgress:
    total: int  # payouts of the batch (dropped rows not counted)
    by_state: dict[str, int]  # Payout.State (or "preparing") -> how many
    by_status: dict[str, int]  # FlashFX's withdrawal status -> how many
    sent: int  # FlashFX has them (SUBMITTED)
    failed: int  # never sent: refused (the payout or its recipient) or closed (declined, ...)
    done: bool  # nothing more is sent for this batch

    @property
    def final(self) -> int:
        return self.sent + self.failed

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(100 * self.final / self.total)


@dataclass(frozen=True)
class ResultRow:
    row: int  # as the file shows it
    code: str  # our payout's code ("" for a dropped row)
    flashfx_id: str  # the withdrawal's id at FlashFX ("" until it has one)
    status: str  # FlashFX's status once it has it, else ours
    error: str = field(default="")


# --- What the approval binds --------------------------------------------------------------------


def row_payload(
    *,
    code: str,
    amount: Decimal,
    currency: str,
    account: dict[str, str],
    reference: str,
    reason: str,
    sender: Sender | None,
) -> dict[str, Any]:
    """What one payout of a batch sends, as its approval binds it: the bank account itself
    (account type, BSB and account number, or PayID), not the recipient's FlashFX id or name,
    which a row with bank details gets only when the batch is sent."""
    return {
        "operation": "createWithdrawal",
        "payout": code,
        "amount": str(Decimal(amount).quantize(payouts.CENT)),
        "currency": currency,
        "account": {
            "account_id_type": account.get("account_id_type", ""),
            "bsb": account.get("bsb", "") or "",
            "account_no": account.get("account_no", "") or "",
            "payid": (account.get("payid", "") or "").lower(),
        },
        "reference": reference,
        "reason": reason,
        "sender": {"id": sender.flashfx_id, "name": sender.name} if sender else None,
    }


def payout_hash(payout: Payout) -> str:
    """The hash of `row_payload` for this payout, its recipient and sender as they are now."""
    r = payout.recipient
    return approvals.payload_hash(
        row_payload(
            code=payout.code,
            amount=payout.amount,
            currency=payout.currency,
            account={
                "account_id_type": r.account_id_type,
                "bsb": r.bsb,
                "account_no": r.account_no,
                "payid": r.payid,
            },
            reference=payout.reference,
            reason=payout.reason,
            sender=payout.sender,
        )
    )


def _batch_payload(batch: PayoutBatch, hashes: dict[str, str]) -> dict[str, Any]:
    return {
        "operation": "payout batch",
        "batch": batch.code,
        "file": batch.file.sha256,
        "count": batch.count,
        "total": str(batch.total),
        "currency": batch.currency,
        "payouts": hashes,
    }


def _summary(batch: PayoutBatch) -> str:
    return (
        f"Batch {batch.code}: {batch.count} payouts, {batch.currency} {batch.total} "
        f"(file {batch.file.name})"
    )


# Per worker process: the payout hashes of an approval already checked intact, by (approval,
# its hash), so that a batch of 1,000 is not hashed again for each payout (the list is ~90 kB).
# What a payout is compared with is then the list as it was verified: an edit of the stored
# payload afterwards cannot make a changed payout match. The state is read every time.
_BOUND: dict[tuple[int, str], dict[str, str]] = {}


def _binds(payout: Payout, outbox: PayoutOutbox) -> bool:
    """The pipeline's last check for a batch payout (payouts._still_approved): its batch's
    approval is APPROVED, intact, and binds this payout's hash, which is the outbox row's and
    what the payout is now."""
    if payout.batch_id is None:
        return False
    found = (
        Approval.objects.filter(payout_batch__pk=payout.batch_id)
        .values_list("pk", "state", "payload_hash")
        .first()
    )
    if found is None or found[1] != Approval.State.APPROVED:
        return False
    key = (found[0], found[2])
    hashes = _BOUND.get(key)
    if hashes is None:
        approval = Approval.objects.get(pk=found[0])
        if not approvals.payload_intact(approval) or approval.payload_hash != found[2]:
            return False
        hashes = dict(approval.payload.get("payouts") or {})
        if len(_BOUND) > 32:
            _BOUND.clear()
        _BOUND[key] = hashes
    bound = hashes.get(payout.code)
    return bound is not None and bound == outbox.payload_hash == payout_hash(payout)


payouts.register_batch_binding(_binds)


# --- The file -----------------------------------------------------------------------------------


def _check(file: PayoutBatchFile) -> Validation:
    """Parse and check the stored file; its summary updated. BatchFileError if unreadable."""
    return _check_parsed(file)[1]


def _check_parsed(file: PayoutBatchFile) -> tuple[ParsedFile, Validation]:
    parsed = parse(ContentFile(bytes(file.data), name=file.name))
    validation = _flag_open_rows(validate(parsed))
    file.rows_checked = validation.checked
    file.rows_clean = validation.count
    file.total = validation.total
    file.currency = validation.currency
    file.errors = [
        {"row": e.row, "column": e.column, "message": e.message} for e in validation.errors
    ]
    file.checked_at = timezone.now()
    if file.pk:
        file.save(
            update_fields=[
                "rows_checked",
                "rows_clean",
                "total",
                "currency",
                "errors",
                "checked_at",
            ]
        )
    return parsed, validation


def _flag_open_rows(validation: Validation) -> Validation:
    """The check's duplicates of the last 30 days look at payouts; a row with bank details of
    a batch not yet sent has none yet. A row paying the same account the same amount with the
    same reference as such a row is flagged too (one query; usually none is open)."""
    if not validation.rows:
        return validation
    waiting = (
        PayoutBatchRow.objects.filter(
            dropped=False,
            payout=None,
            error="",
            reference__in={r.reference for r in validation.rows},
            batch__state__in=(State.AWAITING_APPROVAL, State.APPROVED, State.SENDING),
        )
        .exclude(new_recipient=None)
        .select_related("batch")
    )
    known = {_row_key(r.new_recipient or {}, r.amount, r.reference): r for r in waiting}
    if not known:
        return validation
    accounts = {
        r.pk: {f: getattr(r, f) for f in ("account_id_type", "bsb", "account_no", "payid")}
        for r in Recipient.objects.filter(pk__in={r.recipient_pk for r in validation.rows} - {None})
    }
    clean, errors = [], list(validation.errors)
    for row in validation.rows:
        account = row.new_recipient if row.recipient_pk is None else accounts[row.recipient_pk]
        found = known.get(_row_key(account or {}, row.amount, row.reference))
        if found is None:
            clean.append(row)
            continue
        errors.append(
            CellError(
                row=row.row,
                column="reference",
                message=f"Row {found.row_number} of batch {found.batch.code} "
                f"({found.batch.get_state_display().lower()}) already pays this account this "
                "amount with this reference; if this one is meant too, give it a reference "
                "of its own.",
            )
        )
    return Validation(
        rows=tuple(clean),
        errors=tuple(sorted(errors, key=lambda e: e.row)),
        checked=validation.checked,
        currency=validation.currency,
    )


def _row_key(account: dict[str, Any], amount: Any, reference: str) -> tuple:
    payee = _payee(
        account.get("account_id_type", ""),
        account.get("bsb", "") or "",
        account.get("account_no", "") or "",
        account.get("payid", "") or "",
    )
    return payee, Decimal(amount).quantize(payouts.CENT), reference


def batch_upload(*, upload: Any, by: Any) -> tuple[PayoutBatchFile, Validation]:
    """Store the uploaded file (a name and read()) and check every row; no payout is made.
    BatchFileError when it cannot be read as a batch at all (then nothing is stored)."""
    if not by.has_perm(CREATE_PERMISSION):
        raise BatchError("You do not have permission to start payouts.")
    name = str(getattr(upload, "name", "") or "")[:255]
    data = upload.read(settings.BATCH_MAX_FILE_BYTES + 1)
    file = PayoutBatchFile(
        name=name,
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        uploaded_by=by,
    )
    validation = _check(file)  # BatchFileError: nothing stored
    with transaction.atomic():
        file.save()
        audit.record(
            "payout_batch.file_uploaded",
            actor=by,
            obj=file,
            details={
                "name": file.name,
                "sha256": file.sha256,
                "size": file.size,
                "rows": validation.checked,
                "clean": validation.count,
                "total": validation.total,
                "rows_with_errors": sorted(validation.errors_by_row()),
            },
        )
    return file, validation


def batch_recheck(file: PayoutBatchFile) -> Validation:
    """Check the stored file again (recipients and recent payouts may have changed)."""
    return _check(file)


# --- Creating -----------------------------------------------------------------------------------


def _batch_sender(sender: Sender | None, validation: Validation) -> Sender | None:
    if sender is None:
        if any(r.sender_pk is None for r in validation.rows):
            raise BatchError(
                "Choose the sender the beneficiaries see (\u201cPayment from \u2026\u201d) for "
                "the rows that name none.",
                field="sender",
            )
        return None
    if not sender.flashfx_id:
        raise BatchError("This sender is not at FlashFX yet.", field="sender")
    if sender.deleted_at is not None:
        raise BatchError("This sender was deleted.", field="sender")
    return sender


def batch_create(
    *,
    file: PayoutBatchFile,
    by: Any,
    sender: Sender | None = None,
    drop_bad_rows: bool = False,
) -> PayoutBatch:
    """The file, checked once more, as a batch awaiting approval (see the module's docstring).
    BatchError if a row is bad and `drop_bad_rows` is False, if no row is clean, or if this
    file already has a batch that is not closed."""
    if not by.has_perm(CREATE_PERMISSION):
        raise BatchError("You do not have permission to start payouts.")
    if file.uploaded_by_id != by.pk:
        raise BatchError("Only the member who uploaded this file can submit it.")
    _one_batch_per_file(file)  # before the check, which would find its payouts duplicates
    try:
        parsed, validation = _check_parsed(file)
    except BatchFileError as exc:  # the file is kept as uploaded; only a rule can change
        raise BatchError(" ".join(exc.problems)) from exc
    if validation.errors and not drop_bad_rows:
        bad = len(validation.errors_by_row())
        raise BatchError(
            f"{bad} row{'s' * (bad > 1)} of the file ha{'ve' if bad > 1 else 's'} problems: "
            "fix them and upload the file again, or drop the bad rows.",
            validation=validation,
        )
    if not validation.rows:
        raise BatchError("No row of the file is clean: there is nothing to submit.")
    sender = _batch_sender(sender, validation)
    with transaction.atomic():
        # One batch per file at a time: a second submit of the same file waits here, then
        # finds the first.
        PayoutBatchFile.objects.select_for_update().get(pk=file.pk)
        _one_batch_per_file(file)
        return _create(file=file, by=by, sender=sender, parsed=parsed, validation=validation)


def _one_batch_per_file(file: PayoutBatchFile) -> None:
    live = file.batches.exclude(state__in=(State.DECLINED, State.EXPIRED, State.CANCELLED))
    if existing := live.first():
        raise BatchError(f"This file is batch {existing.code} already.")


def _create(
    *,
    file: PayoutBatchFile,
    by: Any,
    sender: Sender | None,
    parsed: ParsedFile,
    validation: Validation,
) -> PayoutBatch:
    errors = validation.errors_by_row()
    batch = PayoutBatch.objects.create(
        file=file,
        created_by=by,
        count=validation.count,
        total=validation.total,
        currency=validation.currency,
        sender=sender,
        dropped=len(errors),
    )
    recipients = Recipient.objects.in_bulk({r.recipient_pk for r in validation.rows} - {None})
    senders = Sender.objects.in_bulk({r.sender_pk for r in validation.rows} - {None})
    clean = {r.row: r for r in validation.rows}
    made: list[Payout] = []
    rows: list[PayoutBatchRow] = []
    hashes: dict[str, str] = {}
    for line in parsed.rows:
        row = PayoutBatchRow(batch=batch, row_number=line.number, cells=line.cells)
        rows.append(row)
        if line.number in errors:
            row.dropped = True
            row.errors = [{"column": e.column, "message": e.message} for e in errors[line.number]]
            continue
        good: BatchRow = clean[line.number]
        row_sender = senders[good.sender_pk] if good.sender_pk else sender
        row.amount, row.reference, row.reason = good.amount, good.reference, good.reason
        row.sender = row_sender
        if good.recipient_pk is not None:
            payout = Payout(
                recipient=recipients[good.recipient_pk],
                sender=row_sender,
                amount=good.amount,
                currency=good.currency,
                reference=good.reference,
                reason=good.reason,
                maker=by,
                batch=batch,
            )
            made.append(payout)
            row.recipient = payout.recipient
            row.payout_code = payout.code
            row.payload_hash = payout_hash(payout)
        else:
            row.new_recipient = good.new_recipient
            row.payout_code = new_payout_code()
            row.payload_hash = approvals.payload_hash(
                row_payload(
                    code=row.payout_code,
                    amount=good.amount,
                    currency=good.currency,
                    account=good.new_recipient or {},
                    reference=good.reference,
                    reason=good.reason,
                    sender=row_sender,
                )
            )
        hashes[row.payout_code] = row.payload_hash
    Payout.objects.bulk_create(made)
    by_code = {p.code: p for p in made}
    for row in rows:
        row.payout = by_code.get(row.payout_code)
    PayoutBatchRow.objects.bulk_create(rows)
    policy = payout_policy()
    batch.approval = approvals.approval_request(
        action=ACTION,
        payload=_batch_payload(batch, hashes),
        summary=_summary(batch),
        permission=APPROVE_PERMISSION,
        requested_by=by,
        required=policy.approvers_required(batch.total),
        ttl_hours=policy.ttl_hours,
    )
    batch.payload_hash = batch.approval.payload_hash
    batch.save(update_fields=["approval", "payload_hash"])
    detail = f"in batch {batch.code}"
    PayoutEvent.objects.bulk_create(
        PayoutEvent(
            payout=p, from_state="", to_state=PState.AWAITING_APPROVAL, actor=by, detail=detail
        )
        for p in made
    )
    audit.append_many(
        [
            audit.entry(
                "payout_batch.requested",
                actor=by,
                obj=batch,
                after={"state": batch.state},
                details={
                    "code": batch.code,
                    "file": file.sha256,
                    "count": batch.count,
                    "total": batch.total,
                    "dropped_rows": sorted(errors),
                    "payload_hash": batch.payload_hash,
                    "approvers_required": batch.approval.required,
                },
            ),
            *(
                audit.entry(
                    "payout.requested",
                    actor=by,
                    obj=p,
                    after={"state": p.state},
                    details={"code": p.code, "batch": batch.code, "payload_hash": hashes[p.code]},
                )
                for p in made
            ),
        ]
    )
    return batch


# --- Approving ----------------------------------------------------------------------------------


def batch_approval_blocker(batch: PayoutBatch, user: Any) -> str | None:
    """Why `user` may not approve or decline this batch now, or None if they may."""
    if not user.has_perm(APPROVE_PERMISSION):
        return "Your role does not approve payouts."
    if batch.created_by_id == user.pk:
        return "You submitted this batch; other members must approve it."
    approval = batch.approval
    if batch.state != State.AWAITING_APPROVAL or approval is None:
        return f"This batch is {batch.get_state_display().lower()}."
    return approvals.signing_blocker(approval, user)


def _current_hashes(batch: PayoutBatch) -> dict[str, str]:
    """Every payout's hash as its payout, recipient and sender are now (rows with bank
    details: as stored)."""
    current = {
        r.payout_code: r.payload_hash
        for r in batch.rows.filter(dropped=False, payout=None).only("payout_code", "payload_hash")
    }
    for payout in Payout.objects.filter(batch=batch, approval=None).select_related(
        "recipient", "sender"
    ):
        current[payout.code] = payout_hash(payout)
    return current


def batch_approve(*, batch: PayoutBatch, by: Any) -> PayoutBatch:
    """Sign the batch's approval; the last signature needed approves every payout with its
    outbox row, in that transaction (the caller enqueues the sending after commit:
    payments.tasks.payout_batch_enqueue). BatchError says why not; a batch whose payouts
    changed since approval was asked is asked about again."""
    batch = PayoutBatch.objects.select_related("approval", "file").get(pk=batch.pk)
    if blocker := batch_approval_blocker(batch, by):
        raise BatchError(blocker)
    if batch.approval is None:  # the blocker says so first
        raise BatchError("This batch has no approval to give.")
    if _current_hashes(batch) != batch.approval.payload.get("payouts"):
        _reask(batch, reason="A payout of the batch changed since approval was asked for.")
        raise BatchError(
            "What the batch would send changed since approval was asked for (e.g. a "
            "recipient's bank details); approval has been asked for again. Check it and "
            "approve again."
        )
    try:
        approvals.approval_approve(approval=batch.approval, by=by)
    except approvals.ApprovalError as exc:
        raise BatchError(str(exc)) from None
    batch.refresh_from_db()
    return batch


def _reask(batch: PayoutBatch, *, reason: str) -> None:
    """Void the batch's approval and ask again, bound to the payouts as they are now."""
    with transaction.atomic():
        # Lock order as in approving and withdrawing: the approval, then the batch.
        if batch.approval_id is not None:
            Approval.objects.select_for_update().filter(pk=batch.approval_id).first()
        batch = (
            PayoutBatch.objects.select_for_update(of=("self",))
            .select_related("file", "approval")
            .get(pk=batch.pk)
        )
        if batch.state != State.AWAITING_APPROVAL:
            return
        old = batch.approval
        if old is not None:
            approvals.approval_void(old, reason=reason)
        rows = list(batch.rows.filter(dropped=False))
        hashes = _current_hashes(batch)
        for row in rows:
            row.payload_hash = hashes[row.payout_code]
        PayoutBatchRow.objects.bulk_update(rows, ["payload_hash"])
        policy = payout_policy()
        batch.approval = approvals.approval_request(
            action=ACTION,
            payload=_batch_payload(batch, hashes),
            summary=_summary(batch),
            permission=APPROVE_PERMISSION,
            requested_by=batch.created_by,
            required=policy.approvers_required(batch.total),
            ttl_hours=policy.ttl_hours,
        )
        batch.payload_hash = batch.approval.payload_hash
        batch.updated_at = timezone.now()
        batch.save(update_fields=["approval", "payload_hash", "updated_at"])
        audit.record(
            "payout_batch.reasked",
            obj=batch,
            details={"code": batch.code, "reason": reason, "payload_hash": batch.payload_hash},
        )


def _move_batch(
    batch: PayoutBatch, *, from_states: tuple[str, ...], to: str, **fields: Any
) -> bool:
    now = timezone.now()
    moved = PayoutBatch.objects.filter(pk=batch.pk, state__in=from_states).update(
        state=to, updated_at=now, **fields
    )
    if moved:
        batch.state, batch.updated_at = to, now
        for name, value in fields.items():
            setattr(batch, name, value)
    return bool(moved)


def _batch_approved(approval: Approval) -> None:
    """The last signature: every payout APPROVED with its outbox row, and the batch APPROVED,
    in the deciding transaction; a constant number of statements whatever the count."""
    batch = PayoutBatch.objects.select_for_update().get(approval=approval)
    waiting = list(
        Payout.objects.select_for_update(of=("self",))
        .select_related("recipient", "sender", "sub_client")
        .filter(batch=batch, approval=None, state=PState.AWAITING_APPROVAL)
    )
    bound = approval.payload.get("payouts") or {}
    for payout in waiting:
        if bound.get(payout.code) != payout_hash(payout):  # changed since batch_approve looked
            raise approvals.ApprovalError(
                f"Payout {payout.code} changed since approval was asked for; nothing was approved."
            )
    if not _move_batch(
        batch, from_states=(State.AWAITING_APPROVAL,), to=State.APPROVED, approved_at=timezone.now()
    ):
        raise approvals.ApprovalError("This batch is no longer awaiting approval.")
    PayoutOutbox.objects.bulk_create(
        PayoutOutbox(payout=p, request=payouts.withdrawal_input(p), payload_hash=bound[p.code])
        for p in waiting
    )
    signers = ", ".join(u.get_username() for u in approvals.approval_signers(approval))
    payouts._move_many(
        waiting,
        old=PState.AWAITING_APPROVAL,
        to=PState.APPROVED,
        actor=approval.decided_by,
        describe=lambda p: (
            f"approved with batch {batch.code} by {signers}",
            {"batch": batch.code, "approval": str(approval.code), "payload_hash": bound[p.code]},
        ),
    )
    audit.record(
        "payout_batch.approved",
        actor=approval.decided_by,
        obj=batch,
        before={"state": State.AWAITING_APPROVAL},
        after={"state": State.APPROVED},
        details={"code": batch.code, "signers": signers, "payload_hash": approval.payload_hash},
    )


def _close_payouts(batch: PayoutBatch, *, to: str, actor: Any, detail: str) -> None:
    waiting = list(
        Payout.objects.select_for_update(of=("self",)).filter(
            batch=batch, approval=None, state=PState.AWAITING_APPROVAL
        )
    )
    payouts._move_many(
        waiting,
        old=PState.AWAITING_APPROVAL,
        to=to,
        actor=actor,
        describe=lambda p: (detail, {"batch": batch.code}),
    )


def _batch_closed(approval: Approval) -> None:
    """Declined or expired: the batch and its payouts with it."""
    batch = PayoutBatch.objects.select_for_update().get(approval=approval)
    expired = approval.state == Approval.State.EXPIRED
    to = State.EXPIRED if expired else State.DECLINED
    if not _move_batch(batch, from_states=(State.AWAITING_APPROVAL,), to=to):
        return
    actor = None if expired else approval.decided_by
    detail = "not approved in time" if expired else (approval.decision_note or "declined")
    _close_payouts(
        batch,
        to=PState.EXPIRED if expired else PState.DECLINED,
        actor=actor,
        detail=f"batch {batch.code}: {detail}",
    )
    audit.record(
        f"payout_batch.{to}",
        actor=actor,
        obj=batch,
        before={"state": State.AWAITING_APPROVAL},
        after={"state": to},
        details={"code": batch.code, "note": approval.decision_note},
    )


approvals.register_action(ACTION, on_approve=_batch_approved, on_close=_batch_closed)


def batch_decline(*, batch: PayoutBatch, by: Any, note: str = "") -> PayoutBatch:
    """Decline the batch's approval: the batch and its payouts DECLINED."""
    batch = PayoutBatch.objects.select_related("approval").get(pk=batch.pk)
    if blocker := batch_approval_blocker(batch, by):
        raise BatchError(blocker)
    if batch.approval is None:
        raise BatchError("This batch has no approval to decline.")
    try:
        approvals.approval_decline(approval=batch.approval, by=by, note=note)
    except approvals.ApprovalError as exc:
        raise BatchError(str(exc)) from None
    batch.refresh_from_db()
    return batch


def batch_cancel(*, batch: PayoutBatch, by: Any) -> PayoutBatch:
    """Withdrawn by its maker while it awaits approval: the batch and its payouts CANCELLED,
    its approval voided."""
    with transaction.atomic():
        # Lock order as in approving (approval, then batch): an approver signing now waits.
        if batch.approval_id is not None:
            Approval.objects.select_for_update().filter(pk=batch.approval_id).first()
        locked = (
            PayoutBatch.objects.select_for_update(of=("self",))
            .select_related("approval")
            .get(pk=batch.pk)
        )
        if locked.created_by_id != by.pk:
            raise BatchError("Only the member who submitted this batch can withdraw it.")
        if not _move_batch(locked, from_states=(State.AWAITING_APPROVAL,), to=State.CANCELLED):
            raise BatchError("Only a batch awaiting approval can be withdrawn.")
        if locked.approval is not None:
            approvals.approval_void(locked.approval, reason="Withdrawn by its maker.", actor=by)
        _close_payouts(
            locked,
            to=PState.CANCELLED,
            actor=by,
            detail=f"batch {locked.code} withdrawn by its maker",
        )
        audit.record(
            "payout_batch.cancelled",
            actor=by,
            obj=locked,
            before={"state": State.AWAITING_APPROVAL},
            after={"state": State.CANCELLED},
            details={"code": locked.code},
        )
    return locked


# --- Sending ------------------------------------------------------------------------------------


def recipient_external_id(batch: PayoutBatch, row: PayoutBatchRow) -> str:
    """Our externalId for the recipient made from a row's bank details: the batch's code and
    the row's number. Unique to that row for ever, so a create whose answer was lost (or whose
    worker died) is found by looking it up (docs/flashfx.md §2.2), never made twice."""
    return f"{batch.code}-R{row.row_number}"


def _recipient_for(batch: PayoutBatch, row: PayoutBatchRow) -> Recipient:
    """The row's recipient at FlashFX, created once: our mirror first, then FlashFX by our
    externalId, and only if neither has it, created. PartyRefused: FlashFX will not have it
    (the row fails); another PartyError: try again later."""
    ours = recipient_external_id(batch, row)
    mirrored = Recipient.objects.filter(external_id=ours).exclude(flashfx_id="").first()
    if mirrored is not None:
        return mirrored
    try:
        found = flashfx_client().recipients(externalId=ours)
    except Exception as exc:  # FlashFXError and its kinds: not known, try again later
        raise PartyError(f"FlashFX could not be asked for recipient {ours}: {exc}") from exc
    if found:
        registry.get("recipients").apply(found[0], observed_at=timezone.now(), source="batch")
        return Recipient.objects.flashfx_id(found[0].id).get()
    fields = {**(row.new_recipient or {}), "external_id": ours}
    return recipient_create(fields=fields, actor=batch.created_by)


def batch_rows_to_prepare(batch: PayoutBatch) -> bool:
    """Has the batch rows with bank details whose payout is still to be made?"""
    return batch.rows.filter(dropped=False, payout=None, error="").exists()


def batch_prepare(batch: PayoutBatch) -> int:
    """After approval: each row with bank details gets its recipient at FlashFX (once) and its
    payout, APPROVED with its outbox row bound to the hash approved; the batch moves to
    SENDING. How many payouts were made. PartyError (FlashFX unavailable) propagates: the
    rows not done yet are done on the next try."""
    batch = PayoutBatch.objects.select_related("approval", "sender").get(pk=batch.pk)
    if batch.state not in (State.APPROVED, State.SENDING):
        return 0
    made = 0
    pending = batch.rows.filter(dropped=False, payout=None, error="").exclude(new_recipient=None)
    for row_id in pending.order_by("row_number").values_list("pk", flat=True):
        # The row stays locked from the look-up to its payout: a second preparer (the sweep,
        # a task run twice) skips it instead of creating its recipient again.
        with transaction.atomic():
            row = (
                # This row alone (its default ordering would join and lock the batch too).
                PayoutBatchRow.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(pk=row_id, payout=None, error="")
                .order_by()
                .first()
            )
            if row is None:
                continue
            try:
                recipient = _recipient_for(batch, row)
            except PartyRefused as exc:
                row.error = f"FlashFX refused the recipient: {exc.message}"[:500]
                row.save(update_fields=["error"])
                audit.record(
                    "payout_batch.recipient_refused",
                    obj=batch,
                    details={"code": batch.code, "row": row.row_number, "message": exc.message},
                )
                continue
            _make_payout(batch, row, recipient)
            made += 1
    _move_batch(batch, from_states=(State.APPROVED,), to=State.SENDING)
    return made


def _make_payout(batch: PayoutBatch, row: PayoutBatchRow, recipient: Recipient) -> None:
    """The row's payout, APPROVED with its outbox row, in the caller's transaction (which
    holds the row locked)."""
    with transaction.atomic(savepoint=False):
        payout = Payout.objects.create(
            code=row.payout_code,
            recipient=recipient,
            sender=row.sender,
            amount=row.amount,
            currency=batch.currency,
            reference=row.reference,
            reason=row.reason,
            maker=batch.created_by,
            batch=batch,
            state=PState.APPROVED,
        )
        row.payout, row.recipient = payout, recipient
        row.save(update_fields=["payout", "recipient"])
        PayoutOutbox.objects.create(
            payout=payout, request=payouts.withdrawal_input(payout), payload_hash=row.payload_hash
        )
        payouts._event(
            payout,
            old="",
            to=PState.APPROVED,
            actor=None,
            detail=f"row {row.row_number} of batch {batch.code}, approved with it; "
            f"recipient {recipient.flashfx_id} made from its bank details",
        )
        audit.record(
            "payout.approved",
            obj=payout,
            after={"state": payout.state},
            details={
                "code": payout.code,
                "batch": batch.code,
                "row": row.row_number,
                "recipient": recipient.flashfx_id,
                "payload_hash": row.payload_hash,
            },
        )


def batch_send_next(batch: PayoutBatch) -> dict[int, str] | None:
    """Send the batch's next approved outbox row, with up to PAYOUT_SEND_GROUP - 1 others, through
    the pipeline (payouts.payouts_send); None when none of the batch's is left approved."""
    outbox_id = (
        PayoutOutbox.objects.filter(payout__batch=batch, state=Box.APPROVED)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    )
    if outbox_id is None:
        return None
    return payouts.payouts_send(outbox_id)


def batches_due(*, stuck_after: timedelta = timedelta(0)) -> list[int]:
    """For the sweep: approved or sending batches with rows whose payout is still to be made
    (their message lost, or FlashFX was unavailable), and batches approved more than
    `stuck_after` ago whose sending never started (the message after the approval lost)."""
    unmade = Q(
        state__in=(State.APPROVED, State.SENDING),
        rows__dropped=False,
        rows__payout=None,
        rows__error="",
    )
    unstarted = Q(state=State.APPROVED, approved_at__lte=timezone.now() - stuck_after)
    return sorted(set(PayoutBatch.objects.filter(unmade | unstarted).values_list("pk", flat=True)))


def batch_settle(batch: PayoutBatch | None = None) -> list[str]:
    """Approved or sending batches whose every payout is final (and every row with bank details
    has its payout or its error) become DONE; their codes. (Approved: the payouts sweep may
    have sent them all though the batch's own message was lost.)"""
    sending = PayoutBatch.objects.filter(state__in=(State.APPROVED, State.SENDING))
    if batch is not None:
        sending = sending.filter(pk=batch.pk)
    done = []
    for candidate in sending:
        if candidate.rows.filter(dropped=False, payout=None, error="").exists():
            continue
        if candidate.payouts.exclude(state__in=FINAL).exists():
            continue
        with transaction.atomic():
            old = candidate.state
            if _move_batch(candidate, from_states=(old,), to=State.DONE, done_at=timezone.now()):
                progress = batch_progress(candidate)
                audit.record(
                    "payout_batch.done",
                    obj=candidate,
                    before={"state": old},
                    after={"state": State.DONE},
                    details={
                        "code": candidate.code,
                        "sent": progress.sent,
                        "failed": progress.failed,
                    },
                )
                done.append(candidate.code)
    return done


# --- Progress and results -----------------------------------------------------------------------


def batch_progress(batch: PayoutBatch) -> BatchProgress:
    """Counts per payout state and per FlashFX status: three queries whatever the count."""
    by_state = Counter(
        dict(
            Payout.objects.filter(batch=batch)
            .values_list("state")
            .annotate(n=Count("id"))
            .values_list("state", "n")
        )
    )
    by_status = Counter(
        dict(
            Payout.objects.filter(batch=batch, withdrawal__isnull=False)
            .values_list("withdrawal__flashfx_status")
            .annotate(n=Count("id"))
            .values_list("withdrawal__flashfx_status", "n")
        )
    )
    rows = Counter(
        "failed" if error else PREPARING
        for error in batch.rows.filter(dropped=False, payout=None).values_list("error", flat=True)
    )
    if rows[PREPARING]:
        by_state[PREPARING] = rows[PREPARING]
    failed = by_state[PState.SUBMIT_FAILED] + rows["failed"]
    closed = sum(by_state[s] for s in (PState.DECLINED, PState.EXPIRED, PState.CANCELLED))
    total = batch.count
    return BatchProgress(
        total=total,
        by_state=dict(by_state),
        by_status=dict(by_status),
        sent=by_state[PState.SUBMITTED],
        failed=failed + closed,
        done=batch.state in CLOSED,
    )


def batch_result_rows(batch: PayoutBatch) -> list[ResultRow]:
    """One line per row of the file: row, our payout's code, FlashFX's id, status, error."""
    result = []
    rows = batch.rows.select_related("payout__withdrawal").order_by("row_number")
    for row in rows:
        payout = row.payout
        if row.dropped:
            error = "; ".join(
                f"{e['column']}: {e['message']}" if e.get("column") else e["message"]
                for e in row.errors
            )
            result.append(ResultRow(row.row_number, "", "", "dropped", error))
        elif payout is None:
            status = "failed" if row.error else PREPARING
            result.append(ResultRow(row.row_number, row.payout_code, "", status, row.error))
        else:
            w = payout.withdrawal
            error = payout.error_message
            if payout.error_code:
                error = f"{payout.error_code}: {error}"
            if w is not None and w.reject_code:
                error = " ".join(t for t in (w.reject_code, w.status_message) if t)
            result.append(
                ResultRow(
                    row.row_number,
                    payout.code,
                    w.flashfx_id if w else "",
                    w.flashfx_status if w else payout.state,
                    error,
                )
            )
    return result


def _cell(value: Any) -> str:
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_START) else text


def batch_result_csv(batch: PayoutBatch) -> bytes:
    """The result file (CSV UTF-8): row, code, flashfx_id, status, error; every cell that a
    spreadsheet would take for a formula (= + - @, tab, CR first) quoted with a '."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["row", "code", "flashfx_id", "status", "error"])
    for r in batch_result_rows(batch):
        writer.writerow([_cell(v) for v in (r.row, r.code, r.flashfx_id, r.status, r.error)])
    return out.getvalue().encode("utf-8")
