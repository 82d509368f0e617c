"""The deposit queue's read: filters, search, sort, a keyset cursor, a capped count, "N new".

"Received" is COALESCE(flashfx_created_at, created_at): FlashFX's creation time, or ours when
a version without it was mirrored. It is indexed as that expression (Deposit.Meta), alone and
behind each filtered column, rather than sorting on flashfx_created_at with a fallback in
Python: one expression, one index, and the cursor compares exactly what the index orders.

Pages are keyset pages: a cursor holds the sort key and id of the row at the page's edge, so a
deposit arriving while someone reads never shifts the page they are on, and page 500 costs what
page 1 costs. Counts are capped (COUNT over a LIMIT), never a full COUNT(*); a search is counted
no further than the page it read ("50+"), see deposit_queue_page.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ..models import Deposit
from .refunds import refunds_latest

PAGE_SIZE = 50
COUNT_CAP = 1000  # "1,000+" beyond this
NEW_CAP = 99  # "99+ new"
MIN_SEARCH = 3

# Keep in step with migration 0005 (its trigram index is on this expression, unqualified).
_T = '"payments_deposit".'
SEARCH_TEXT = (
    f"({_T}sender_account_name || ' ' || {_T}sender_bsb || ' ' || {_T}sender_account_no || ' '"
    f" || {_T}sender_bsb || {_T}sender_account_no || ' ' || {_T}external_reference || ' '"
    f" || {_T}flashfx_id || ' ' || {_T}external_id)"
)

# sort name -> (key field, descending)
SORTS: dict[str, tuple[str, bool]] = {
    "newest": ("received", True),
    "oldest": ("received", False),
    "largest": ("amount", True),
    "smallest": ("amount", False),
}


class InvalidCursor(ValueError):
    """A cursor we did not write (edited, truncated, or for another sort)."""


@dataclass(frozen=True)
class QueueFilters:
    status: str = ""
    review: str = ""
    received_from: date | None = None
    received_to: date | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    sub_client_id: int | None = None
    assignee: str = ""  # "", "me", "nobody" or a user id
    q: str = ""
    sort: str = "newest"
    user_id: int | None = None  # who "me" is


@dataclass
class QueuePage:
    deposits: list[Deposit]
    next_cursor: str | None
    prev_cursor: str | None
    count: int
    count_capped: bool
    newest_id: int
    sort: str = "newest"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def count_label(self) -> str:
        return f"{self.count:,}+" if self.count_capped else f"{self.count:,}"


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def _like_pattern(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def deposit_search(qs: QuerySet[Deposit], q: str) -> QuerySet[Deposit]:
    """Deposits whose payer name, BSB/account, reference, FlashFX id or external id hold `q`."""
    if connection.vendor == "postgresql":
        # The very expression of the trigram index, so the planner can use it.
        return qs.filter(
            # SEARCH_TEXT is our constant expression; the search is a bound parameter.
            RawSQL(f"{SEARCH_TEXT} ILIKE %s", [_like_pattern(q)], output_field=BooleanField())  # noqa: S611
        )
    compact = q.replace(" ", "").replace("-", "")
    return qs.filter(
        Q(sender_account_name__icontains=q)
        | Q(sender_bsb__icontains=compact)
        | Q(sender_account_no__icontains=compact)
        | Q(external_reference__icontains=q)
        | Q(flashfx_id__icontains=q)
        | Q(external_id__icontains=q)
    )


def deposit_queue_filtered(filters: QueueFilters) -> QuerySet[Deposit]:
    """Every deposit the filters select; "received" is an alias to filter and sort on (not
    selected, so a capped count that filters on indexed columns alone can stay in the index)."""
    qs = Deposit.objects.alias(received=Coalesce("flashfx_created_at", "created_at"))
    if filters.status:
        qs = qs.filter(flashfx_status=filters.status)
    if filters.review:
        qs = qs.filter(review_state=filters.review)
    if filters.received_from:
        qs = qs.filter(received__gte=_start_of(filters.received_from))
    if filters.received_to:  # the whole of that day
        qs = qs.filter(received__lt=_start_of(filters.received_to + timedelta(days=1)))
    if filters.amount_min is not None:
        qs = qs.filter(amount__gte=filters.amount_min)
    if filters.amount_max is not None:
        qs = qs.filter(amount__lte=filters.amount_max)
    if filters.sub_client_id:
        qs = qs.filter(sub_client_id=filters.sub_client_id)
    if filters.assignee == "me":
        qs = qs.filter(assignee_id=filters.user_id)
    elif filters.assignee == "nobody":
        qs = qs.filter(assignee__isnull=True)
    elif filters.assignee:
        qs = qs.filter(assignee_id=int(filters.assignee))
    if filters.q:
        qs = deposit_search(qs, filters.q)
    return qs


def deposit_queue_rows(filters: QueueFilters) -> QuerySet[Deposit]:
    """Every deposit the filters select, in the queue's sort (what an export of it writes)."""
    sort = filters.sort if filters.sort in SORTS else "newest"
    key_field, descending = SORTS[sort]
    order = [f"-{key_field}", "-id"] if descending else [key_field, "id"]
    return deposit_queue_filtered(filters).order_by(*order)


# Cursors -------------------------------------------------------------------------------------


def encode_cursor(*, sort: str, key: Any, pk: int, direction: str) -> str:
    value = key.isoformat() if isinstance(key, datetime) else str(key)
    raw = json.dumps([sort, value, pk, direction], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, sort: str) -> tuple[Any, int, str]:
    """(key, id, "next"|"prev") from a cursor; InvalidCursor for anything we did not write."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        cursor_sort, value, pk, direction = json.loads(raw)
    except (ValueError, binascii.Error, TypeError, UnicodeDecodeError) as e:
        raise InvalidCursor(str(e)) from e
    if cursor_sort != sort or direction not in ("next", "prev") or type(pk) is not int:
        raise InvalidCursor("cursor for another sort")
    if not isinstance(value, str):
        raise InvalidCursor("bad key")
    if SORTS[sort][0] == "received":
        key = parse_datetime(value)
        if key is None or key.tzinfo is None:
            raise InvalidCursor("bad time")
    else:
        try:
            key = Decimal(value)
        except InvalidOperation as e:
            raise InvalidCursor("bad amount") from e
        if not key.is_finite():
            raise InvalidCursor("bad amount")
    return key, pk, direction


def _after(key_field: str, key: Any, pk: int, *, descending: bool) -> Q:
    """Rows after (key, pk) in the given order. The first term bounds the index range scan;
    the second drops the ties already shown."""
    if descending:
        return Q(**{f"{key_field}__lte": key}) & (Q(**{f"{key_field}__lt": key}) | Q(pk__lt=pk))
    return Q(**{f"{key_field}__gte": key}) & (Q(**{f"{key_field}__gt": key}) | Q(pk__gt=pk))


def deposit_queue_page(
    filters: QueueFilters, *, cursor: str = "", size: int | None = None
) -> QueuePage:
    """One page of the queue. Raises InvalidCursor for a cursor we did not write."""
    size = size or PAGE_SIZE
    sort = filters.sort if filters.sort in SORTS else "newest"
    key_field, descending = SORTS[sort]
    base = deposit_queue_filtered(filters)
    qs = base
    direction = "next"
    if cursor:
        key, pk, direction = decode_cursor(cursor, sort=sort)
        # "prev" walks the other way from the first row of the page we came from.
        qs = qs.filter(_after(key_field, key, pk, descending=descending ^ (direction == "prev")))
    walk_desc = descending ^ (direction == "prev")
    order = [f"-{key_field}", "-id"] if walk_desc else [key_field, "id"]
    rows = list(
        qs.annotate(received_at=Coalesce("flashfx_created_at", "created_at"))
        .order_by(*order)
        .select_related("sub_client", "assignee")[: size + 1]
    )
    more = len(rows) > size
    rows = rows[:size]
    if direction == "prev":
        rows.reverse()
    latest = refunds_latest(deposit_ids=[d.pk for d in rows])
    for d in rows:
        d.received = d.received_at
        d.latest_refund = latest.get(d.pk)

    def edge(d: Deposit, way: str) -> str:
        return encode_cursor(sort=sort, key=getattr(d, key_field), pk=d.pk, direction=way)

    if direction == "next":
        next_cursor = edge(rows[-1], "next") if more and rows else None
        prev_cursor = edge(rows[0], "prev") if cursor and rows else None
    else:
        prev_cursor = edge(rows[0], "prev") if more and rows else None
        next_cursor = edge(rows[-1], "next") if rows else None

    if not cursor and not more:  # the first page holds them all: it is the count
        count, capped = len(rows), False
    elif filters.q:
        # A search's matches are found by filtering rows (or a trigram bitmap) at a cost that
        # grows as they get rarer; counting them would read them all a second time only to
        # say "100+" rather than "50+". Any page of a search with more than one page has more
        # than a page of matches: that is what it says.
        count, capped = size, True
    else:  # filters walk an index: a count capped at COUNT_CAP reads that many entries at most
        counted = base.order_by()[: COUNT_CAP + 1].count()
        count, capped = min(counted, COUNT_CAP), counted > COUNT_CAP
    newest = Deposit.objects.order_by("-id").values_list("id", flat=True).first() or 0
    return QueuePage(
        deposits=rows,
        next_cursor=next_cursor,
        prev_cursor=prev_cursor,
        count=count,
        count_capped=capped,
        newest_id=newest,
        sort=sort,
    )


def deposit_queue_new_count(filters: QueueFilters, *, since: int) -> int:
    """How many deposits the filters select that were mirrored after `since` (an id), up to
    NEW_CAP + 1; a walk of the primary key from `since`, however large the table."""
    qs = deposit_queue_filtered(filters).filter(pk__gt=since).order_by()
    return qs[: NEW_CAP + 1].count()
