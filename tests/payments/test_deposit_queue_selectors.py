"""The queue's read: filters, search, sort, keyset pages, capped counts and "N new"."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from queue_support import T0, make_deposit
from staff import make_staff

from payments.models import DepositRefund
from payments.selectors import deposits as sel
from payments.selectors.deposits import QueueFilters, deposit_queue_page

pytestmark = pytest.mark.django_db


def ids(page):
    return [d.flashfx_id for d in page.deposits]


def test_newest_first_by_received_with_our_creation_time_when_flashfx_sent_none():
    old = make_deposit(flashfx_created_at=T0)
    undated = make_deposit(flashfx_created_at=None, created_at=T0 + timedelta(hours=5))
    new = make_deposit(flashfx_created_at=T0 + timedelta(hours=1))
    page = deposit_queue_page(QueueFilters())
    assert ids(page) == [undated.flashfx_id, new.flashfx_id, old.flashfx_id]
    assert ids(deposit_queue_page(QueueFilters(sort="oldest"))) == ids(page)[::-1]


def test_sort_by_amount_both_ways():
    a = make_deposit(amount=Decimal("5.00"))
    b = make_deposit(amount=Decimal("500.00"))
    c = make_deposit(amount=Decimal("50.00"))
    assert ids(deposit_queue_page(QueueFilters(sort="largest"))) == [
        b.flashfx_id,
        c.flashfx_id,
        a.flashfx_id,
    ]
    assert ids(deposit_queue_page(QueueFilters(sort="smallest"))) == [
        a.flashfx_id,
        c.flashfx_id,
        b.flashfx_id,
    ]


@pytest.mark.parametrize("sort", ["newest", "oldest", "largest", "smallest"])
def test_cursor_pages_cover_every_row_once_and_previous_goes_back(sort):
    for i in range(23):  # ties on amount and time, to exercise the id tie-breaker
        make_deposit(
            amount=Decimal(10 * (i % 4)), flashfx_created_at=T0 + timedelta(minutes=i // 3)
        )
    filters = QueueFilters(sort=sort)
    seen, pages, cursor = [], [], ""
    while True:
        page = deposit_queue_page(filters, cursor=cursor, size=5)
        pages.append(page)
        seen += ids(page)
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert len(seen) == 23 and len(set(seen)) == 23
    assert [len(p.deposits) for p in pages] == [5, 5, 5, 5, 3]
    assert pages[0].prev_cursor is None
    back = deposit_queue_page(filters, cursor=pages[3].prev_cursor, size=5)
    assert ids(back) == ids(pages[2])
    first = deposit_queue_page(filters, cursor=pages[1].prev_cursor, size=5)
    assert ids(first) == ids(pages[0]) and first.prev_cursor is None


def test_a_new_arrival_does_not_shift_the_page_being_read():
    for _ in range(6):
        make_deposit()
    first = deposit_queue_page(QueueFilters(), size=3)
    second_before = ids(deposit_queue_page(QueueFilters(), cursor=first.next_cursor, size=3))
    make_deposit(flashfx_created_at=T0 + timedelta(days=1))
    assert (
        ids(deposit_queue_page(QueueFilters(), cursor=first.next_cursor, size=3)) == second_before
    )


@pytest.mark.parametrize(
    "cursor",
    ["garbage!", "eyJ4IjoxfQ", sel.encode_cursor(sort="largest", key="1", pk=1, direction="next")],
)
def test_a_cursor_we_did_not_write_is_refused(cursor):
    make_deposit()
    with pytest.raises(sel.InvalidCursor):
        deposit_queue_page(QueueFilters(sort="newest"), cursor=cursor)


def test_filters_each_select_what_they_say():
    me = make_staff("operator", "olivia")
    other = make_staff("operator", "oscar")
    reviewing = make_deposit(flashfx_status="REVIEWING")
    flagged = make_deposit(review_state="flagged")
    mine = make_deposit(assignee=me)
    theirs = make_deposit(assignee=other)
    big = make_deposit(amount=Decimal("25000.00"))
    late = make_deposit(flashfx_created_at=T0 + timedelta(days=3))

    def sel_ids(**kw):
        return set(ids(deposit_queue_page(QueueFilters(user_id=me.pk, **kw))))

    assert sel_ids(status="REVIEWING") == {reviewing.flashfx_id}
    assert sel_ids(review="flagged") == {flagged.flashfx_id}
    assert sel_ids(assignee="me") == {mine.flashfx_id}
    assert sel_ids(assignee=str(other.pk)) == {theirs.flashfx_id}
    assert mine.flashfx_id not in sel_ids(assignee="nobody")
    assert sel_ids(amount_min=Decimal("1000")) == {big.flashfx_id}
    assert big.flashfx_id not in sel_ids(amount_max=Decimal("1000"))
    assert sel_ids(received_from=(T0 + timedelta(days=2)).date()) == {late.flashfx_id}
    assert late.flashfx_id not in sel_ids(received_to=T0.date())


def test_search_over_payer_account_reference_and_ids():
    d = make_deposit(
        sender_account_name="Wattle Holdings",
        sender_bsb="733111",
        sender_account_no="99887766",
        external_reference="INV-2026-441",
        external_id="ext-ab12",
    )
    make_deposit()
    for q in ["wattle", "99887766", "733111", "inv-2026", d.flashfx_id.lower(), "ext-ab12"]:
        assert ids(deposit_queue_page(QueueFilters(q=q))) == [d.flashfx_id], q
    assert ids(deposit_queue_page(QueueFilters(q="100%"))) == []  # LIKE wildcards are literal


def test_count_is_capped(monkeypatch):
    monkeypatch.setattr(sel, "COUNT_CAP", 4)
    for _ in range(6):
        make_deposit()
    page = deposit_queue_page(QueueFilters(), size=2)
    assert (page.count, page.count_capped, page.count_label) == (4, True, "4+")
    monkeypatch.setattr(sel, "COUNT_CAP", 10)
    assert deposit_queue_page(QueueFilters(), size=2).count_label == "6"


def test_a_search_is_counted_no_further_than_the_page_it_read(django_assert_num_queries):
    for i in range(3):
        make_deposit(sender_account_name=f"Wattle Farm {i}")
    make_deposit(sender_account_name="Someone Else")
    page = deposit_queue_page(QueueFilters(q="wattle"), size=2)
    assert (page.count_label, page.count_capped) == ("2+", True)
    assert deposit_queue_page(QueueFilters(q="wattle"), size=3).count_label == "3"
    later = deposit_queue_page(QueueFilters(q="wattle"), size=2, cursor=page.next_cursor)
    assert ids(later) and later.count_label == "2+"
    # The page, its refunds and the newest id: no second walk of the matches to count them.
    with django_assert_num_queries(3):
        deposit_queue_page(QueueFilters(q="wattle"), size=2)


def test_new_count_counts_only_later_arrivals_the_filters_select():
    make_deposit()
    since = deposit_queue_page(QueueFilters()).newest_id
    assert sel.deposit_queue_new_count(QueueFilters(), since=since) == 0
    make_deposit(flashfx_status="REVIEWING")
    make_deposit(flashfx_status="CONFIRMED")
    assert sel.deposit_queue_new_count(QueueFilters(), since=since) == 2
    assert sel.deposit_queue_new_count(QueueFilters(status="REVIEWING"), since=since) == 1


def test_latest_refund_is_read_without_a_query_per_row(django_assert_max_num_queries):
    member = make_staff("operator", "rita")
    for i in range(5):
        d = make_deposit()
        DepositRefund.objects.create(
            deposit=d,
            amount=d.amount,
            currency="AUD",
            reason_code="other",
            reason="test",
            state="refused",
            requested_by=member,
            error_code=f"E{i}",
            error_message="No.",
        )
    with django_assert_max_num_queries(4):
        page = deposit_queue_page(QueueFilters())
        codes = {d.latest_refund.error_code for d in page.deposits}
    assert codes == {f"E{i}" for i in range(5)}
