"""Maker-checker: a money action one member asks for and another approves (four eyes).

    approval = approval_request(action="deposit.refund", payload={...}, summary="...",
                                permission="payments.approve_refund", requested_by=member)
    approval_approve(approval=approval, by=other_member)   # signs; the last needed runs on_approve
    approval_decline(approval=approval, by=other_member, note="why")  # runs its on_close

An approval is bound to what will be sent: `payload` is exactly that (JSON), and
`payload_hash` its SHA-256 over canonical JSON. Approving checks the hash again, and the action
checks it once more before anything goes out, so a row edited behind our back is refused.

The generic part knows no action. Each service that needs four eyes registers its action here
when its module is imported (`register_action`), with what runs, in the deciding transaction,
on approval and on a decline or expiry. This keeps imports one way (refunds -> approvals, never
back): payments/services/refunds.py registers "deposit.refund"; payouts will register theirs.
Every step is an audit event ("approval.requested", "approval.signed", "approval.approved",
"approval.declined", "approval.expired", "approval.cancelled").

N approvers: `required` (default 1) distinct members, never the requester, each an
ApprovalSignature; the signature that makes `required` decides. A void (`approval_void`:
what it was bound to changed) cancels the approval and every signature with it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from backoffice import audit

from ..models import Approval, ApprovalSignature

State = Approval.State


class ApprovalError(Exception):
    """An approval step that cannot be done; the message says why, for the member."""


@dataclass(frozen=True)
class Action:
    """What an approval of this action does. Both run inside the deciding transaction.

    on_approve(approval): the approval is APPROVED; carry the action forward (e.g. queue the
    refund; the caller enqueues the work after commit).
    on_close(approval): the approval was DECLINED or EXPIRED (approval.state says which).
    """

    on_approve: Callable[[Approval], None]
    on_close: Callable[[Approval], None]


ACTIONS: dict[str, Action] = {}


def register_action(
    name: str, *, on_approve: Callable[[Approval], None], on_close: Callable[[Approval], None]
) -> None:
    """Declare what approving or closing an approval of `name` does (once, at import)."""
    ACTIONS[name] = Action(on_approve=on_approve, on_close=on_close)


def canonical(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as the JSON column gives it back (Decimals and datetimes as strings)."""
    return json.loads(json.dumps(payload, cls=DjangoJSONEncoder))


def payload_hash(payload: dict[str, Any]) -> str:
    """SHA-256 of canonical JSON: sorted keys, no spaces, UTF-8."""
    text = json.dumps(
        canonical(payload),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        cls=DjangoJSONEncoder,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def payload_intact(approval: Approval) -> bool:
    return payload_hash(approval.payload) == approval.payload_hash


def approval_request(
    *,
    action: str,
    payload: dict[str, Any],
    summary: str,
    permission: str,
    requested_by: Any,
    required: int = 1,
    ttl_hours: float | None = None,
) -> Approval:
    """Ask for `required` other members' approval (PENDING, expiring after `ttl_hours`, by
    default APPROVAL_TTL_HOURS)."""
    if action not in ACTIONS:
        raise ApprovalError(f"Nothing is registered to run for {action!r}.")
    if required < 1:
        raise ApprovalError("An approval needs at least one approver.")
    now = timezone.now()
    payload = canonical(payload)
    hours = settings.APPROVAL_TTL_HOURS if ttl_hours is None else ttl_hours
    with transaction.atomic():
        approval = Approval.objects.create(
            action=action,
            permission=permission,
            summary=summary[:300],
            payload=payload,
            payload_hash=payload_hash(payload),
            requested_by=requested_by,
            requested_at=now,
            expires_at=now + timedelta(hours=hours),
            required=required,
        )
        audit.record(
            "approval.requested",
            actor=requested_by,
            obj=approval,
            after={"state": approval.state},
            details={
                "action": action,
                "summary": approval.summary,
                "payload": payload,
                "payload_hash": approval.payload_hash,
                "permission": permission,
                "required": required,
                "expires_at": approval.expires_at,
            },
        )
    return approval


def _check_decider(approval: Approval, by: Any) -> None:
    if approval.state != State.PENDING:
        decided = f" by {approval.decided_by}" if approval.decided_by_id else ""
        raise ApprovalError(f"This approval was already {approval.state}{decided}.")
    if approval.requested_by_id == by.pk:
        raise ApprovalError("You asked for this; someone else must approve or decline it.")
    if not by.has_perm(approval.permission):
        raise ApprovalError("You do not have the permission this approval needs.")
    if approval.signatures.filter(signer_id=by.pk).exists():
        raise ApprovalError("You have already approved this; another member must approve it too.")


def _decide(approval: Approval, *, to: str, by: Any, note: str = "") -> Approval:
    """Compare-and-set PENDING -> `to`, its audit event and the action's follow-up, at once."""
    now = timezone.now()
    with transaction.atomic():
        moved = Approval.objects.filter(pk=approval.pk, state=State.PENDING).update(
            state=to, decided_by=by, decided_at=now, decision_note=note[:500]
        )
        if not moved:
            approval.refresh_from_db()
            raise ApprovalError(
                f"Someone else decided this approval meanwhile (it is {approval.state})."
            )
        approval.state, approval.decided_at, approval.decision_note = to, now, note[:500]
        approval.decided_by = by
        audit.record(
            f"approval.{to}",
            actor=by,
            obj=approval,
            before={"state": State.PENDING},
            after={"state": to},
            details={"action": approval.action, "note": note}
            if note
            else {"action": approval.action},
        )
        handler = ACTIONS[approval.action]
        if to == State.APPROVED:
            handler.on_approve(approval)
        else:
            handler.on_close(approval)
    return approval


def _expire(approval: Approval) -> bool:
    """PENDING -> EXPIRED (system); False if it was decided meanwhile."""
    now = timezone.now()
    with transaction.atomic():
        moved = Approval.objects.filter(pk=approval.pk, state=State.PENDING).update(
            state=State.EXPIRED, decided_at=now
        )
        if not moved:
            return False
        approval.state, approval.decided_at = State.EXPIRED, now
        audit.record(
            "approval.expired",
            actor=None,
            obj=approval,
            before={"state": State.PENDING},
            after={"state": State.EXPIRED},
            details={"action": approval.action, "expires_at": approval.expires_at},
        )
        ACTIONS[approval.action].on_close(approval)
    return True


def approval_approve(*, approval: Approval, by: Any) -> Approval:
    """PENDING -> APPROVED by a member other than the requester holding `permission`; runs the
    action's on_approve in the same transaction. ApprovalError says why not."""
    approval.refresh_from_db()
    _check_decider(approval, by)
    if approval.expires_at <= timezone.now():
        _expire(approval)
        raise ApprovalError("This approval expired before it was decided; ask again.")
    if not payload_intact(approval):
        raise ApprovalError(
            "What would be sent no longer matches what was asked for; it cannot be approved."
        )
    return _sign(approval, by=by)


def _sign(approval: Approval, *, by: Any) -> Approval:
    """One more member's signature; the one that makes `required` decides (APPROVED). The
    approval's row lock serialises signers (on SQLite the IMMEDIATE transaction does), so two
    approvers at the same moment give two signatures and exactly one decision."""
    with transaction.atomic():
        locked = Approval.objects.select_for_update().get(pk=approval.pk)
        _check_decider(locked, by)  # decided, or signed by them, while we waited for the lock
        ApprovalSignature.objects.create(
            approval=locked, signer=by, payload_hash=locked.payload_hash
        )
        signed = locked.signatures.count()
        audit.record(
            "approval.signed",
            actor=by,
            obj=locked,
            details={
                "action": locked.action,
                "signed": signed,
                "required": locked.required,
                "payload_hash": locked.payload_hash,
            },
        )
        if signed >= locked.required:
            decided = _decide(locked, to=State.APPROVED, by=by)
            approval.state, approval.decided_at = decided.state, decided.decided_at
            approval.decided_by = by
    return approval


def signing_blocker(approval: Approval, user: Any) -> str | None:
    """Why `user` may not sign or decline this approval now (no longer pending, past its time,
    signed by them already), or None. What the object it is about allows is its caller's."""
    if approval.state != Approval.State.PENDING:
        return f"Its approval is {approval.state}."
    if approval.expires_at <= timezone.now():
        return "Its approval has expired."
    if approval.signatures.filter(signer_id=user.pk).exists():
        return "You have approved it; it waits for another member."
    return None


def approval_signers(approval: Approval) -> list[Any]:
    """The members who have approved so far, in order."""
    return [s.signer for s in approval.signatures.select_related("signer")]


def approval_void(approval: Approval, *, reason: str, actor: Any = None) -> bool:
    """PENDING or APPROVED -> CANCELLED: what it was bound to changed (an edit, new bank
    details) or its maker withdrew it. Its signatures no longer count; the action's follow-up
    is its caller's. False if it was already closed."""
    now = timezone.now()
    with transaction.atomic():
        row = Approval.objects.filter(pk=approval.pk, state__in=(State.PENDING, State.APPROVED))
        old = row.values_list("state", flat=True).first()
        if old is None or not row.filter(state=old).update(
            state=State.CANCELLED, decided_at=now, decision_note=reason[:500]
        ):
            return False
        approval.state, approval.decided_at, approval.decision_note = (
            State.CANCELLED,
            now,
            reason[:500],
        )
        audit.record(
            "approval.cancelled",
            actor=actor,
            obj=approval,
            before={"state": old},
            after={"state": State.CANCELLED},
            details={"action": approval.action, "reason": reason},
        )
    return True


def approval_decline(*, approval: Approval, by: Any, note: str = "") -> Approval:
    """PENDING -> DECLINED by a member other than the requester holding `permission`; runs the
    action's on_close in the same transaction."""
    approval.refresh_from_db()
    _check_decider(approval, by)
    if approval.expires_at <= timezone.now():
        _expire(approval)
        raise ApprovalError("This approval expired before it was decided.")
    return _decide(approval, to=State.DECLINED, by=by, note=note.strip())


def expire_due(*, now: Any = None) -> int:
    """Expire every PENDING approval past its expires_at (beat); how many were expired."""
    now = now or timezone.now()
    due = Approval.objects.filter(state=State.PENDING, expires_at__lte=now).order_by("pk")
    return sum(_expire(approval) for approval in due)
