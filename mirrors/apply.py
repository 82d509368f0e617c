"""The one rule for applying what FlashFX tells us to our mirrors.

Sync, webhooks and the replies to our own mutations all bring "the provider's version of an
entity, as observed at some time". Whatever the source, it goes through `apply_remote` (one
entity) or `apply_remote_many` (a sync window), which share `decide`:

- newer never loses to older: a version observed before the one we hold is stale, and may only
  fill fields we have never had (e.g. a late webhook's clearedAt);
- a status never moves backwards along the documented state machine, except on the documented
  backward edges (e.g. a withdrawal's FAILED -> PENDING); a refused move is flagged, not applied;
- an unknown status or code is stored as received and flagged, never dropped;
- nothing changed, nothing written: `updated_at` moves only when a field did.

Each entity is serialised by a row lock (SELECT ... FOR UPDATE; on SQLite the IMMEDIATE
transaction already serialises writers), and a concurrent first insert is absorbed.

Every row created and every status that moved is written down as a StatusChange, with the
source that brought it ("sync", "webhook #<event id>", "reconcile", "reply"), in the same
transaction: the history a timeline shows. The callers get the same moves as `Change`s, for
the apps' own follow-ups (MirrorSpec.on_change).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import rollup
from .base import Mirror
from .insert import create_many, insert_values
from .models import StatusChange


class Outcome(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    STALE = "stale"  # older than what we hold; at most filled empty fields
    REFUSED = "refused"  # a backward move; flagged on the row


@dataclass
class Applied:
    obj: Mirror
    outcome: Outcome
    changed: list[str] = field(default_factory=list)
    previous_status: str | None = None  # the status before; None when the row was created


@dataclass(frozen=True)
class Change:
    """A row created, or whose status moved: what the apps follow up on (MirrorSpec.on_change)."""

    obj: Mirror
    created: bool
    old_status: str  # "" when created
    new_status: str

    @property
    def status_moved(self) -> bool:
        return self.old_status != self.new_status


def change_of(applied: Applied) -> Change | None:
    """The Change an apply_remote() made, or None when it neither created nor moved a status."""
    status = getattr(applied.obj, "flashfx_status", "")
    if applied.outcome is Outcome.CREATED:
        return Change(applied.obj, True, "", status)
    if applied.outcome is Outcome.UPDATED and applied.previous_status != status:
        return Change(applied.obj, False, applied.previous_status or "", status)
    return None


HISTORY_COLUMNS = (
    "entity",
    "flashfx_id",
    "old_status",
    "new_status",
    "observed_at",
    "recorded_at",
    "source",
)


def _history(
    model: type[Mirror], changes: list[Change], observed: dict[str, datetime], source: str
):
    if model.STATUS_ORDER is None or not changes:
        return
    entity, now, source = model._meta.label_lower, timezone.now(), source[:64]
    insert_values(
        StatusChange,
        HISTORY_COLUMNS,
        (
            (
                entity,
                c.obj.flashfx_id,
                c.old_status,
                c.new_status,
                observed[c.obj.flashfx_id],
                now,
                source,
            )
            for c in changes
        ),
    )


@dataclass(frozen=True)
class Remote:
    """The provider's version of one entity: its id, its fields as column values, when seen."""

    flashfx_id: str
    fields: dict[str, Any]
    observed_at: datetime
    status: str | None = None
    unknown: tuple[str, ...] = ()  # e.g. ("status FOO", "rejectCode BAR") to flag


def decide(
    obj: Mirror, remote: Remote, *, authoritative: bool = False
) -> tuple[Outcome, dict[str, Any]]:
    """What applying `remote` to the row `obj` changes. Pure: writes nothing.

    `authoritative` (reconciliation) takes the remote version as the truth, whatever its order.
    """
    differs = {k: v for k, v in remote.fields.items() if getattr(obj, k) != v}
    order = obj.STATUS_ORDER
    old_status = getattr(obj, "flashfx_status", None)
    if not authoritative and obj.remote_changed_at and remote.observed_at < obj.remote_changed_at:
        filled = {
            k: v for k, v in differs.items() if k in obj.FILL_ONCE and getattr(obj, k) in (None, "")
        }
        return (Outcome.STALE, filled)
    if (
        not authoritative
        and order is not None
        and remote.status is not None
        and old_status
        and not order.may_move(old_status, remote.status)
    ):
        return (Outcome.REFUSED, {"anomaly": f"refused move {old_status} -> {remote.status}"[:300]})
    if remote.unknown:
        differs["anomaly"] = "unknown " + ", ".join(remote.unknown)
    elif obj.anomaly:
        differs["anomaly"] = ""  # a later, clean version clears an earlier flag
    if not differs:
        return (Outcome.UNCHANGED, {})
    return (Outcome.UPDATED, differs)


def _changes_for_write(
    obj: Mirror, outcome: Outcome, changes: dict[str, Any], remote: Remote
) -> dict[str, Any]:
    if not changes:
        return {}
    now = timezone.now()
    if outcome is Outcome.UPDATED:
        return {**changes, "remote_changed_at": remote.observed_at, "updated_at": now}
    return {**changes, "updated_at": now}  # STALE fill-ins and REFUSED flags keep the newer time


def _new_row(model: type[Mirror], remote: Remote) -> Mirror:
    anomaly = ("unknown " + ", ".join(remote.unknown)) if remote.unknown else ""
    values = {
        **remote.fields,
        "flashfx_id": remote.flashfx_id,
        "remote_changed_at": remote.observed_at,
        "anomaly": anomaly,
    }
    columns = _columns(model)
    if not values.keys() <= columns.keys():
        return model(**values)  # a property or a relation by name: Django's own way
    # By position, in the model's field order: what Django does when it reads a row, and a
    # good deal cheaper than keyword arguments for a window of a thousand new rows.
    args: list[Any] = [
        values[name] if name in values else field.get_default() for name, field in columns.items()
    ]
    build: Any = model  # the type checker knows keyword construction only
    return build(*args)


@functools.cache
def _columns(model: type[Mirror]) -> dict[str, Any]:
    """attname -> field, for every concrete field, in the order Model(*args) takes them."""
    return {f.attname: f for f in model._meta.concrete_fields}


Prepare = Callable[[list[Any]], None]


def apply_remote(
    model: type[Mirror],
    remote: Remote,
    *,
    authoritative: bool = False,
    source: str = "",
    prepare_new: Prepare | None = None,
) -> Applied:
    """Apply one provider version to its mirror row, creating it if needed.

    `prepare_new` fills our own columns of a row about to be created (MirrorSpec.prepare_new).
    """
    with transaction.atomic():
        applied = _apply_one(model, remote, authoritative=authoritative, prepare_new=prepare_new)
        change = change_of(applied)
        if change is not None:
            _history(model, [change], {remote.flashfx_id: remote.observed_at}, source)
        return applied


def _apply_one(
    model: type[Mirror], remote: Remote, *, authoritative: bool, prepare_new: Prepare | None
) -> Applied:
    obj = model.objects.select_for_update().flashfx_id(remote.flashfx_id).first()
    if obj is None:
        try:
            with transaction.atomic():  # a savepoint, so a lost insert race leaves us usable
                obj = _new_row(model, remote)
                if prepare_new is not None:
                    prepare_new([obj])
                obj.save(force_insert=True)
                rollup.follow([], obj)
            return Applied(obj, Outcome.CREATED, list(remote.fields))
        except IntegrityError:
            obj = model.objects.select_for_update().flashfx_id(remote.flashfx_id).get()
    previous_status = getattr(obj, "flashfx_status", None)
    outcome, changes = decide(obj, remote, authoritative=authoritative)
    write = _changes_for_write(obj, outcome, changes, remote)
    if write:
        moved_before = rollup.snapshot(obj)
        for name, value in write.items():
            setattr(obj, name, value)
        obj.save(update_fields=list(write))
        rollup.follow(moved_before, obj)
    changed = [k for k in changes if k != "anomaly"] if changes else []
    return Applied(obj, outcome, changed, previous_status)


def apply_remote_many(
    model: type[Mirror],
    remotes: Iterable[Remote],
    changed: list[str] | None = None,
    *,
    source: str = "",
    moves: list[Change] | None = None,
    prepare_new: Prepare | None = None,
) -> dict[Outcome, int]:
    """The same rule for a batch (a sync window): one lock query, bulk inserts and updates.

    `changed`, if given, receives the ids of the rows created or updated; `moves` the rows
    created or whose status moved, as Changes.
    """
    found: list[Change] = []
    by_id = {r.flashfx_id: r for r in remotes}  # one version per id; a list holds no duplicates
    counts = dict.fromkeys(Outcome, 0)
    if not by_id:
        return counts
    with transaction.atomic():
        existing = {o.flashfx_id: o for o in model.objects.select_for_update().flashfx_ids(by_id)}
        new_rows = [_new_row(model, r) for fid, r in by_id.items() if fid not in existing]
        dirty: list[Mirror] = []
        dirty_fields: set[str] = set()
        moved: list[tuple[list, Mirror]] = []  # (what a row moved before, the row) for the roll-up
        for flashfx_id, obj in existing.items():
            remote = by_id[flashfx_id]
            previous_status = getattr(obj, "flashfx_status", None)
            outcome, changes = decide(obj, remote)
            counts[outcome] += 1
            if changed is not None and outcome is Outcome.UPDATED:
                changed.append(flashfx_id)
            write = _changes_for_write(obj, outcome, changes, remote)
            if write:
                moved.append((rollup.snapshot(obj), obj))
                for name, value in write.items():
                    setattr(obj, name, value)
                dirty.append(obj)
                dirty_fields.update(write)
            move = change_of(Applied(obj, outcome, [], previous_status))
            if move is not None:
                found.append(move)
        if changed is not None:
            changed.extend(row.flashfx_id for row in new_rows)
        if new_rows:
            if prepare_new is not None:
                prepare_new(new_rows)
            # A row created meanwhile by a webhook makes this fail as a whole; the caller
            # retries the window, which then sees it as existing.
            create_many(model, new_rows, key="flashfx_id")
            counts[Outcome.CREATED] += len(new_rows)
        if dirty:
            model.objects.bulk_update(dirty, sorted(dirty_fields), batch_size=500)
        rollup.follow_many([*moved, *(([], row) for row in new_rows)])
        found.extend(Change(row, True, "", getattr(row, "flashfx_status", "")) for row in new_rows)
        observed = {fid: r.observed_at for fid, r in by_id.items()}
        _history(model, found, observed, source)
    if moves is not None:
        moves.extend(found)
    return counts
