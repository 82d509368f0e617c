"""Keep the mirrors true by asking FlashFX, whatever webhooks did or did not arrive.

FlashFX gives up on a webhook after three retries (docs/flashfx.md §4.2), so sync is what guarantees
that the mirror converges. Its list queries have no pagination (§2.5): we walk time windows
by creation time (minCreatedAt/maxCreatedAt) whose width adapts so that no answer reaches
`FLASHFX_SYNC_WINDOW_MAX_ROWS` rows (see walk_windows), so neither an answer nor our memory
grows with the size of the account. Every row goes through the same apply rule as webhooks,
in bulk.

Incremental sync = the windows since the last successful run (less an overlap), plus one look
at everything still in a non-final status (a deposit clearing, a payout failing days after it
was CONFIRMED), since status changes do not change createdAt; and what the mirror still holds
as open but FlashFX no longer lists as open (a deposit that cleared, a payment that closed) has
its createdAt range read again. Running it twice changes nothing the second time.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connections
from django.db.models import Q
from django.utils import timezone

from flashfx.client import FlashFXClient

from .apply import Outcome
from .models import SyncRun
from .registry import MirrorSpec, registry

log = logging.getLogger(__name__)

ONE_MS = timedelta(milliseconds=1)
MAX_WINDOW = timedelta(days=366)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SyncError(Exception):
    pass


def sync_entity(
    *, client: FlashFXClient, entity: str, since: datetime | None = None, full: bool = False
) -> SyncRun:
    """One entity: the given window (or everything with `full`), else incremental since the last run."""
    spec = registry.get(entity)
    until = timezone.now()
    mode = "full" if full or since is not None else "incremental"
    if mode == "incremental":
        since = _last_until(entity)
        if since is None:
            mode = "full"
    if since is None:
        since = settings.FLASHFX_SYNC_EPOCH
    run = SyncRun.objects.create(entity=entity, mode=mode, since=since, until=until)
    try:
        _walk(client, spec, run, since, until)
        if mode == "incremental" and spec.open_statuses:
            lookback = until - timedelta(days=settings.FLASHFX_SYNC_OPEN_LOOKBACK_DAYS)
            observed_at = timezone.now()
            rows = _open_rows(client, spec, {"minCreatedAt": iso(lookback)})
            counts = spec.apply_many(rows, observed_at=observed_at, changed=run.changed_ids)
            _count(run, counts, len(rows))
            # What the mirror holds as open but FlashFX no longer lists as open has moved on
            # (a deposit cleared, a payment closed): read its createdAt range again.
            if (
                oldest := _oldest_moved_on(spec, lookback, since, {r.id for r in rows})
            ) is not None:
                _walk(client, spec, run, oldest, since)
    except Exception as exc:
        run.status, run.error, run.finished_at = (
            SyncRun.Status.FAILED,
            f"{type(exc).__name__}: {exc}",
            timezone.now(),
        )
        run.save()
        log.exception("sync of %s failed", entity)
        raise
    run.changed_ids = list(dict.fromkeys(run.changed_ids))[:1000]
    run.status, run.finished_at = SyncRun.Status.SUCCEEDED, timezone.now()
    run.save()
    log.info(
        "sync %s %s: %d windows, %d fetched, %d created, %d updated, %d unchanged, %d stale, %d refused",
        entity,
        mode,
        run.windows,
        run.fetched,
        run.created,
        run.updated,
        run.unchanged,
        run.stale,
        run.refused,
    )
    return run


def sync_all(
    *,
    client: FlashFXClient,
    entities: list[str] | None = None,
    since: datetime | None = None,
    full: bool = False,
) -> list[SyncRun]:
    return [
        sync_entity(client=client, entity=name, since=since, full=full)
        for name in entities or registry.names()
    ]


def _last_until(entity: str) -> datetime | None:
    last = (
        SyncRun.objects.filter(entity=entity, status=SyncRun.Status.SUCCEEDED)
        .order_by("-until")
        .values_list("until", flat=True)
        .first()
    )
    if last is None:
        return None
    # Overlap, for rows committed at FlashFX with a createdAt just before our last look.
    return last - timedelta(seconds=settings.FLASHFX_SYNC_OVERLAP_SECONDS)


HELD_OPEN_COLUMNS = ("flashfx_id", "flashfx_created_at")


def _oldest_moved_on(
    spec: MirrorSpec, lookback: datetime, before: datetime, still_open: set[str]
) -> datetime | None:
    """The oldest createdAt among rows the mirror holds in an open status, created in
    [lookback, before), that FlashFX did not list as open: they left it since the last look."""
    # Q, not keywords: these columns are the entity's, not the Mirror base's the type names.
    held_open = spec.model.objects.filter(
        Q(flashfx_status__in=spec.open_statuses)
        & Q(flashfx_created_at__gte=lookback)
        & Q(flashfx_created_at__lt=before)
    ).values_list(*HELD_OPEN_COLUMNS)
    moved = [
        created for flashfx_id, created in held_open.iterator() if flashfx_id not in still_open
    ]
    if moved:
        log.info(
            "sync %s: %d rows left their open status; re-reading from %s",
            spec.name,
            len(moved),
            iso(min(moved)),
        )
    return min(moved, default=None)


def _open_rows(client: FlashFXClient, spec: MirrorSpec, filters: dict) -> list:
    """Everything still in a non-final status, in one query or one per status (§2.5)."""
    if spec.one_status_per_query:
        return [
            row
            for status in spec.open_statuses
            for row in spec.fetch_many(client, **filters, status=status)
        ]
    return spec.fetch_many(client, **filters, statuses=list(spec.open_statuses))


@dataclass
class Window:
    start: datetime
    end: datetime
    rows: list
    observed_at: datetime  # taken before the read: the rows are at least this fresh
    requests: int  # including the too-full answers that were dropped


def walk_windows(
    fetch: Callable[[dict], list],
    since: datetime,
    until: datetime,
    *,
    max_rows: int,
    first_window: timedelta,
) -> Iterator[Window]:
    """Windows over [since, until] by createdAt (both ends inclusive), oldest first.

    A window that comes back with `max_rows` rows or more is dropped and asked again at half
    the width; a window that comes back under a quarter full makes the next one twice as wide
    (up to a year). So each answer stays under `max_rows` rows whatever the account's density,
    a sparse history takes few requests, and memory follows the window, not the account.
    """
    width, start, requests = first_window, since, 0
    while start <= until:
        end = min(start + width, until)
        observed_at = timezone.now()
        rows = fetch({"minCreatedAt": iso(start), "maxCreatedAt": iso(end)})
        requests += 1
        if len(rows) >= max_rows and end - start > ONE_MS:
            width = (end - start) / 2
            continue
        if len(rows) >= max_rows:
            log.warning(
                "sync: %d rows share the millisecond %s; took them all", len(rows), iso(start)
            )
        yield Window(start, end, rows, observed_at, requests)
        requests = 0
        start = end + ONE_MS  # the wire has milliseconds; maxCreatedAt covered all of `end`'s
        if len(rows) < max_rows // 4:
            width = min(width * 2, MAX_WINDOW)


def _walk(
    client: FlashFXClient, spec: MirrorSpec, run: SyncRun, since: datetime, until: datetime
) -> None:
    windows = walk_windows(
        lambda filters: spec.fetch_many(client, **filters),
        since,
        until,
        max_rows=settings.FLASHFX_SYNC_WINDOW_MAX_ROWS,
        first_window=timedelta(hours=settings.FLASHFX_SYNC_FIRST_WINDOW_HOURS),
    )
    for window in read_ahead(windows):
        run.windows += window.requests
        _apply_window(spec, window.rows, window.observed_at, run)


def read_ahead(windows: Iterator[Window]) -> Iterator[Window]:
    """Fetch the next window while the current one is written: the two halves of a sync wait
    on different things (FlashFX, the database), so overlapping them nearly halves its time.
    At most one window waits in the queue, so memory stays bounded by the window size.
    """
    handoff: queue.Queue[Window | BaseException | None] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for window in windows:
                while not stop.is_set():
                    try:
                        handoff.put(window, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            handoff.put(None)
        except BaseException as exc:  # handed to the consumer, which raises it
            handoff.put(exc)
        finally:
            connections.close_all()  # this thread's own, if a token store used the database

    producer = threading.Thread(target=produce, name="sync-read-ahead", daemon=True)
    producer.start()
    try:
        while (item := handoff.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        producer.join(timeout=60)


def _apply_window(spec: MirrorSpec, rows: list, observed_at: datetime, run: SyncRun) -> None:
    try:
        counts = spec.apply_many(rows, observed_at=observed_at, changed=run.changed_ids)
    except IntegrityError:
        # A webhook created one of these rows between our lock and our insert: go again,
        # now it is an existing row like the others.
        counts = spec.apply_many(rows, observed_at=observed_at, changed=run.changed_ids)
    _count(run, counts, len(rows))


def _count(run: SyncRun, counts: dict[Outcome, int], fetched: int) -> None:
    run.fetched += fetched
    run.created += counts[Outcome.CREATED]
    run.updated += counts[Outcome.UPDATED]
    run.unchanged += counts[Outcome.UNCHANGED]
    run.stale += counts[Outcome.STALE]
    run.refused += counts[Outcome.REFUSED]
