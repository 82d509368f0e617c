"""A deposit's timeline: FlashFX's status history, staff actions and notes, oldest first.

Merged from three records: mirrors.StatusChange (each creation or status move, with what
brought it: "sync", "webhook #<id>", "reply", ...), the audit trail (actions on the deposit
itself, its refunds and their approvals, its notes, expected payment and match proposals) and
the notes. payments/ never imports webhooks/ (docs/architecture.md): a webhook source links to
the raw event page by URL name only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.urls import reverse

from backoffice.models import AuditEvent
from mirrors.models import StatusChange

from ..models import Deposit, ExpectedPayment

WEBHOOK_SOURCE = re.compile(r"webhook #(\d+)")
ENTITY = "payments.deposit"

# Audit actions in words; anything else is shown as its action name.
ACTIONS = {
    "deposit.refund.requested": "Rejection requested",
    "deposit.refund.queued": "Rejection queued for FlashFX",
    "deposit.refund.sending": "Refund being sent to FlashFX",
    "deposit.refund.sent": "FlashFX accepted the refund",
    "deposit.refund.completed": "Refund completed",
    "deposit.refund.refused": "FlashFX refused the refund",
    "deposit.refund.unknown": "No answer from FlashFX; checking",
    "deposit.refund.failed": "Refund failed",
    "deposit.refund.declined": "Rejection declined by the approver",
    "deposit.refund.expired": "Rejection not approved in time",
    "approval.requested": "Approval requested",
    "approval.approved": "Approved",
    "approval.declined": "Declined",
    "approval.expired": "Approval expired",
}


@dataclass
class Entry:
    at: datetime
    kind: str  # "status", "action", "note"
    title: str
    actor: str  # "" when FlashFX or the system did it
    source: str = ""  # what brought a status change
    link: str = ""  # the raw webhook event, for those who may see it
    text: str = ""  # a note's text, or an action's details in words
    details: dict[str, Any] = field(default_factory=dict)


def _status_entries(deposit: Deposit, *, webhook_links: bool) -> list[Entry]:
    entries = []
    rows = StatusChange.objects.filter(entity=ENTITY, flashfx_id=deposit.flashfx_id)
    for row in rows.order_by("recorded_at", "id"):
        title = (
            f"FlashFX: {row.old_status} \u2192 {row.new_status}"
            if row.old_status
            else f"Arrived at FlashFX as {row.new_status}"
        )
        link = ""
        match = WEBHOOK_SOURCE.search(row.source)
        if match and webhook_links:
            link = reverse("webhooks:event", args=[int(match.group(1))])
        entries.append(
            Entry(
                at=row.recorded_at,
                kind="status",
                title=title,
                actor="",
                source=row.source,
                link=link,
            )
        )
    return entries


def _objects(deposit: Deposit) -> list[tuple[str, list[str]]]:
    """The (object_type, ids) whose audit events belong on this deposit's timeline."""
    refunds = list(deposit.refunds.values_list("pk", "approval_id"))
    expected = list(ExpectedPayment.objects.filter(deposit=deposit).values_list("pk", flat=True))
    return [
        ("payments.deposit", [str(deposit.pk)]),
        ("payments.depositrefund", [str(pk) for pk, _ in refunds]),
        ("payments.approval", [str(a) for _, a in refunds if a]),
        ("payments.depositnote", [str(pk) for pk in deposit.notes.values_list("pk", flat=True)]),
        ("payments.expectedpayment", [str(pk) for pk in expected]),
        (
            "payments.matchproposal",
            [str(pk) for pk in deposit.match_proposals.values_list("pk", flat=True)],
        ),
    ]


def _audit_entries(deposit: Deposit) -> list[Entry]:
    entries = []
    for object_type, ids in _objects(deposit):
        if not ids:
            continue
        events = AuditEvent.objects.filter(object_type=object_type, object_id__in=ids)
        for event in events.order_by("occurred_at", "id"):
            details = event.details or {}
            words = []
            if details.get("amount"):
                words.append(f"{details.get('currency', '')} {details['amount']}".strip())
            for key in ("reason", "message", "note"):
                if details.get(key):
                    words.append(str(details[key]))
            if details.get("code"):
                words.append(f"code {details['code']}")
            entries.append(
                Entry(
                    at=event.occurred_at,
                    kind="action",
                    title=ACTIONS.get(event.action, event.action),
                    actor=event.actor,
                    text="; ".join(words),
                    details=details,
                )
            )
    return entries


def _note_entries(deposit: Deposit) -> list[Entry]:
    return [
        Entry(
            at=n.created_at, kind="note", title="Note", actor=n.author.get_username(), text=n.text
        )
        for n in deposit.notes.select_related("author")
    ]


def deposit_timeline(*, deposit: Deposit, user: Any) -> list[Entry]:
    """Everything that happened to `deposit`, oldest first; webhook sources link to the raw
    event only for members who may see webhook events."""
    entries = (
        _status_entries(deposit, webhook_links=user.has_perm("webhooks.view_inboundevent"))
        + _audit_entries(deposit)
        + _note_entries(deposit)
    )
    entries.sort(key=lambda e: e.at)
    return entries
