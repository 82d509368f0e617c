"""What staff do about reconciliation (the pages at /reconciliation/): settle a flagged drift
item by re-applying FlashFX's version or by marking it resolved with a note, run a
reconciliation now, and fetch a day's statement. Each is an audit event.

The comparing itself is mirrors/reconcile.py and mirrors/statement.py; this module adds the
person, the audit trail and the locks that make two people settling at once settle once.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from flashfx.errors import FlashFXError
from mirrors import selectors
from mirrors.client import flashfx_client
from mirrors.models import DriftItem, StatementLine
from mirrors.registry import registry
from mirrors.statement import statement_beside_mirror, statement_totals

from . import audit

log = logging.getLogger(__name__)

RESOLVE_PERMISSION = "mirrors.resolve_driftitem"
RUN_PERMISSION = "mirrors.run_reconciliation"
NOTE_MAX = 2000

SETTLED = "drift.settled"
RUN_REQUESTED = "reconciliation.requested"
STATEMENT_FETCHED = "statement.fetched"


class ResolutionError(Exception):
    """A settlement that cannot be made as asked; the message is for the member."""


def _lock_open(item: DriftItem) -> list[DriftItem]:
    """The entity's open items, locked (SELECT ... FOR UPDATE; SQLite's write lock): a second
    member settling the same entity waits, then finds nothing open."""
    return list(selectors.open_items_of(item).select_for_update().order_by("id"))


def _settle(
    items: list[DriftItem], *, how: str, by: Any, note: str, request: HttpRequest | None, **extra
) -> DriftItem:
    now = timezone.now()
    latest = items[-1]
    DriftItem.objects.filter(pk__in=[i.pk for i in items]).update(
        settled=how, settled_at=now, settled_by=by, settled_note=note
    )
    audit.record(
        SETTLED,
        actor=by,
        request=request,
        obj=latest,
        before={"open_items": [i.pk for i in items]},
        after={"settled": how, "note": note, **extra},
        details={"entity": latest.entity, "flashfx_id": latest.flashfx_id, "kind": latest.kind},
    )
    latest.refresh_from_db()
    return latest


def drift_item_reapply(
    *, item: DriftItem, by: Any, note: str = "", request: HttpRequest | None = None
) -> DriftItem:
    """Read the entity from FlashFX now and apply it through the apply rule as the authority;
    settle the entity's open items when the mirror took it. Raises ResolutionError when FlashFX
    does not know the entity or the apply rule still refuses it (the items stay open)."""
    spec = registry.get(item.entity)
    try:
        wire = spec.fetch_one(flashfx_client(), item.flashfx_id)
    except FlashFXError as exc:
        raise ResolutionError(f"FlashFX could not be asked: {exc}") from exc
    if wire is None:
        raise ResolutionError(
            f"FlashFX has no {item.entity[:-1]} {item.flashfx_id}: nothing to re-apply. "
            "Find out why, then mark it resolved with what you found."
        )
    with transaction.atomic():
        items = _lock_open(item)
        if not items:
            raise ResolutionError("Someone settled this item already.")
        applied = spec.apply(
            wire, observed_at=timezone.now(), authoritative=True, source="reconciliation page"
        )
        if applied.outcome in ("refused", "stale"):
            raise ResolutionError(
                f"The mirror did not take FlashFX's version ({applied.outcome}): "
                f"{applied.obj.anomaly or 'see the row'}. It stays open."
            )
        return _settle(
            items,
            how=DriftItem.Settled.REAPPLIED,
            by=by,
            note=note.strip()[:NOTE_MAX],
            request=request,
            outcome=str(applied.outcome),
            changed=applied.changed,
        )


def drift_item_mark_resolved(
    *, item: DriftItem, by: Any, note: str, request: HttpRequest | None = None
) -> DriftItem:
    """Settle the entity's open items by a person's judgement, which the note must explain."""
    note = note.strip()
    if not note:
        raise ResolutionError("Say what you found and did: the note is required.")
    if len(note) > NOTE_MAX:
        raise ResolutionError(f"Keep the note under {NOTE_MAX} characters.")
    with transaction.atomic():
        items = _lock_open(item)
        if not items:
            raise ResolutionError("Someone settled this item already.")
        return _settle(items, how=DriftItem.Settled.MARKED, by=by, note=note, request=request)


def reconciliation_run_now(*, by: Any, days: int, request: HttpRequest | None = None) -> None:
    """Queue a reconciliation of the last `days` days (the nightly one's task), audited."""
    from mirrors.tasks import reconcile_enqueue

    if not 1 <= days <= 90:
        raise ResolutionError("Reconcile between 1 and 90 days back.")
    with transaction.atomic():
        audit.record(RUN_REQUESTED, actor=by, request=request, details={"days": days})
        reconcile_enqueue(days)


def statement_fetch(
    *, day: date, currency: str, by: Any, request: HttpRequest | None = None
) -> list[StatementLine]:
    """FlashFX's statement of `day` beside the mirror, stored; audited with its counts."""
    if day > timezone.localdate():
        raise ResolutionError("FlashFX has no statement for a day that has not begun.")
    try:
        rows = statement_beside_mirror(client=flashfx_client(), day=day, currency=currency)
    except FlashFXError as exc:
        raise ResolutionError(f"FlashFX could not give the statement: {exc}") from exc
    audit.record(
        STATEMENT_FETCHED,
        actor=by,
        request=request,
        details={
            "day": day.isoformat(),
            "currency": currency,
            "lines": statement_totals(rows).by_match,
        },
    )
    return rows
