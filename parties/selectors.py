"""Reads of the parties' mirrors that other code needs."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .models import PayeeCheck, Recipient, Sender, SubClient

M = TypeVar("M", Recipient, Sender, SubClient)


def sub_client_pks(*, flashfx_ids: Iterable[str | None]) -> dict[str, int]:
    """The local keys of the mirrored sub-clients among these FlashFX ids (one query)."""
    wanted = {i for i in flashfx_ids if i}
    if not wanted:
        return {}
    return dict(SubClient.objects.flashfx_ids(wanted).values_list("flashfx_id", "pk"))


# --- Lists: search and keyset pages -------------------------------------------------------------
#
# As the deposit queue (payments/selectors/deposits.py): filters live in the URL, and pages
# are cut by a cursor holding the sort key and id of the row at the page's edge, so a party
# mirrored while someone reads never shifts their page. Newest first: "seen" is FlashFX's
# creation time, or ours when a version came without it.

PAGE_SIZE = 50
MIN_SEARCH = 2


class InvalidCursor(ValueError):
    """A cursor we did not write (edited, truncated)."""


@dataclass
class Page(Generic[M]):
    rows: list[M]
    next_cursor: str | None
    prev_cursor: str | None


def _compact(q: str) -> str:
    """'062-000', '062 000' and 'gb29 nwbk' as the stored BSB, account or IBAN are written."""
    return q.replace(" ", "").replace("-", "")


def recipient_search(qs: QuerySet[Recipient], q: str) -> QuerySet[Recipient]:
    """Recipients whose name, BSB, account, PayID, IBAN, FlashFX id or external id hold `q`."""
    compact = _compact(q)
    return qs.filter(
        Q(display_name__icontains=q)
        | Q(nick_name__icontains=q)
        | Q(first_name__icontains=q)
        | Q(last_name__icontains=q)
        | Q(company_name__icontains=q)
        | Q(bsb__icontains=compact)
        | Q(account_no__icontains=compact)
        | Q(payid__icontains=q)
        | Q(iban__icontains=compact)
        | Q(flashfx_id__icontains=q)
        | Q(external_id__icontains=q)
    )


def sender_search(qs: QuerySet[Sender], q: str) -> QuerySet[Sender]:
    """Senders whose name, email, FlashFX id or external id hold `q`."""
    return qs.filter(
        Q(nick_name__icontains=q)
        | Q(first_name__icontains=q)
        | Q(middle_name__icontains=q)
        | Q(last_name__icontains=q)
        | Q(company_name__icontains=q)
        | Q(email__icontains=q)
        | Q(flashfx_id__icontains=q)
        | Q(external_id__icontains=q)
    )


def sub_client_search(qs: QuerySet[SubClient], q: str) -> QuerySet[SubClient]:
    """Sub-clients whose name, BSB, account, FlashFX id or external id hold `q`."""
    compact = _compact(q)
    return qs.filter(
        Q(full_name__icontains=q)
        | Q(legal_name__icontains=q)
        | Q(bsb__icontains=compact)
        | Q(account_no__icontains=compact)
        | Q(flashfx_id__icontains=q)
        | Q(external_id__icontains=q)
    )


def encode_cursor(*, key: datetime, pk: int, direction: str) -> str:
    raw = json.dumps([key.isoformat(), pk, direction], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int, str]:
    """(key, id, "next"|"prev"); InvalidCursor for anything we did not write."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value, pk, direction = json.loads(raw)
    except (ValueError, binascii.Error, TypeError, UnicodeDecodeError) as e:
        raise InvalidCursor(str(e)) from e
    if direction not in ("next", "prev") or type(pk) is not int or not isinstance(value, str):
        raise InvalidCursor("not one of our cursors")
    key = parse_datetime(value)
    if key is None or key.tzinfo is None:
        raise InvalidCursor("bad time")
    return key, pk, direction


def _keyset_page(qs: QuerySet[M], *, cursor: str, size: int) -> Page[M]:
    """Newest first by (seen, id); raises InvalidCursor."""
    qs = qs.annotate(seen=Coalesce("flashfx_created_at", "created_at"))
    direction = "next"
    if cursor:
        key, pk, direction = decode_cursor(cursor)
        if direction == "next":  # older than the last row shown
            qs = qs.filter(Q(seen__lt=key) | Q(seen=key, pk__lt=pk))
        else:  # newer than the first row shown, walked upwards
            qs = qs.filter(Q(seen__gt=key) | Q(seen=key, pk__gt=pk))
    order = ["-seen", "-id"] if direction == "next" else ["seen", "id"]
    rows = list(qs.order_by(*order)[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    if direction == "prev":
        rows.reverse()

    def edge(row: Any, way: str) -> str:
        return encode_cursor(key=row.seen, pk=row.pk, direction=way)

    if direction == "next":
        next_cursor = edge(rows[-1], "next") if more and rows else None
        prev_cursor = edge(rows[0], "prev") if cursor and rows else None
    else:
        prev_cursor = edge(rows[0], "prev") if more and rows else None
        next_cursor = edge(rows[-1], "next") if rows else None
    return Page(rows=rows, next_cursor=next_cursor, prev_cursor=prev_cursor)


def recipient_page(*, q: str = "", cursor: str = "", size: int = PAGE_SIZE) -> Page[Recipient]:
    """One page of the recipients not deleted, searched by `q`; raises InvalidCursor."""
    return _keyset_page(recipients_filtered(q=q), cursor=cursor, size=size)


def recipients_filtered(*, q: str = "") -> QuerySet[Recipient]:
    """The recipients not deleted, searched by `q` (the list's rows, unordered)."""
    qs = Recipient.objects.filter(deleted_at__isnull=True)
    return recipient_search(qs, q) if q else qs


def sender_page(*, q: str = "", cursor: str = "", size: int = PAGE_SIZE) -> Page[Sender]:
    """One page of the senders not deleted, searched by `q`; raises InvalidCursor."""
    return _keyset_page(senders_filtered(q=q), cursor=cursor, size=size)


def senders_filtered(*, q: str = "") -> QuerySet[Sender]:
    """The senders not deleted, searched by `q` (the list's rows, unordered)."""
    qs = Sender.objects.filter(deleted_at__isnull=True)
    return sender_search(qs, q) if q else qs


def newest_first(qs: QuerySet[M]) -> QuerySet[M]:
    """A list's rows in its pages' order: newest first by (seen, id)."""
    return qs.annotate(seen=Coalesce("flashfx_created_at", "created_at")).order_by("-seen", "-id")


def sub_client_page(*, q: str = "", cursor: str = "", size: int = PAGE_SIZE) -> Page[SubClient]:
    """One page of the sub-clients, searched by `q`; raises InvalidCursor."""
    qs = SubClient.objects.all()
    if q:
        qs = sub_client_search(qs, q)
    return _keyset_page(qs, cursor=cursor, size=size)


def party_counts() -> dict[str, int]:
    return {
        "recipients": Recipient.objects.filter(deleted_at__isnull=True).count(),
        "senders": Sender.objects.filter(deleted_at__isnull=True).count(),
        "sub_clients": SubClient.objects.count(),
    }


# --- One recipient: cooling and Confirmation of Payee ---------------------------------------


def recipient_cooling_until(recipient: Recipient) -> datetime | None:
    """Until when payouts to this recipient are flagged as going to new bank details
    (PAYOUT_NEW_RECIPIENT_COOLING_HOURS after we first saw them); None once that has passed."""
    since = recipient.bank_details_changed_at
    if since is None:
        return None
    until = since + timedelta(hours=settings.PAYOUT_NEW_RECIPIENT_COOLING_HOURS)
    return until if until > timezone.now() else None


def payee_check_latest(recipient: Recipient) -> PayeeCheck | None:
    """The latest Confirmation of Payee check of this recipient's current BSB and account
    (a check of details it no longer has says nothing about it); None when there is none."""
    return (
        PayeeCheck.objects.filter(
            recipient=recipient, bsb=recipient.bsb, account_no=recipient.account_no
        )
        .order_by("-checked_at", "-id")
        .first()
    )
